package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func flags() (*pflag.FlagSet, *string, *int, *[]string) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "")
	n := fs.Int("max-conns", 10, "")
	res := fs.StringArray("resolve", nil, "")
	fs.String("config", "", "")
	return fs, listen, n, res
}

func write(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) (string, bool) { return "", false }

func TestPrecedence(t *testing.T) {
	fs, listen, n, res := flags()
	if err := fs.Parse([]string{"--listen", "0.0.0.0:1"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REGWARD_MAX_CONNS": "7", "REGWARD_LISTEN": "ignored:1"}
	p := write(t, "max-conns: 99\nresolve:\n  - a.test=127.0.0.1:1\n  - b.test=127.0.0.1:2\n")
	err := Apply(fs, p, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "config")
	if err != nil {
		t.Fatal(err)
	}
	if *listen != "0.0.0.0:1" || *n != 7 || strings.Join(*res, ",") != "a.test=127.0.0.1:1,b.test=127.0.0.1:2" {
		t.Fatalf("listen=%q max-conns=%d resolve=%v", *listen, *n, *res)
	}
}

func TestUnknownKeyNamed(t *testing.T) {
	fs, _, _, _ := flags()
	err := Apply(fs, write(t, "listen: x\nlsiten: y\n"), noEnv, "config")
	if err == nil || !strings.Contains(err.Error(), `unknown key "lsiten"`) {
		t.Fatalf("err = %v, want unknown key lsiten", err)
	}
	err = Apply(fs, write(t, "config: other.yaml\n"), noEnv, "config")
	if err == nil || !strings.Contains(err.Error(), `"config"`) {
		t.Fatalf("err = %v, want config key refused", err)
	}
}

func TestBadValuesNamed(t *testing.T) {
	fs, _, _, _ := flags()
	err := Apply(fs, write(t, "max-conns: lots\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), `key "max-conns"`) {
		t.Fatalf("err = %v", err)
	}
	fs, _, _, _ = flags()
	err = Apply(fs, write(t, "listen: [a, b]\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "takes one value") {
		t.Fatalf("err = %v", err)
	}
	fs, _, _, _ = flags()
	err = Apply(fs, write(t, "- just\n- a list\n"), noEnv)
	if err == nil {
		t.Fatal("a YAML list as the whole file was accepted")
	}
	fs, _, _, _ = flags()
	if err := Apply(fs, write(t, ""), noEnv); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}
