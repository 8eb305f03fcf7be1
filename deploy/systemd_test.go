package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/regward/regward/internal/regwardtest"
)

// unit is a systemd unit file: section -> key -> values, in order.
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", path, n, l)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) == 0 {
		t.Fatalf("[%s] has no %s", section, key)
	}
	return v[len(v)-1]
}

// unitConfig returns the YAML file the unit's ExecStart names with
// --config (looked up next to the unit) and its subcommand.
func unitConfig(t *testing.T, u unit) (sub, file string, keys map[string]any) {
	t.Helper()
	f := strings.Fields(u.one(t, "Service", "ExecStart"))
	if len(f) != 4 || f[0] != "/usr/local/bin/regward" || f[2] != "--config" || !strings.HasPrefix(f[3], "/etc/regward/") {
		t.Fatalf("ExecStart %v, want /usr/local/bin/regward SUBCOMMAND --config /etc/regward/FILE", f)
	}
	file = filepath.Join("systemd", filepath.Base(f[3]))
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("ExecStart names %s, which deploy/systemd lacks: %v", f[3], err)
	}
	if err := yaml.Unmarshal(data, &keys); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return f[1], file, keys
}

// The hardening every unit must keep: regward needs no privilege.
var hardening = map[string]string{
	"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "ProtectSystem": "strict",
	"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
	"RestrictSUIDSGID": "yes", "MemoryDenyWriteExecute": "yes", "User": "regward",
}

func TestSystemdUnits(t *testing.T) {
	sysusers, err := os.ReadFile(filepath.Join("systemd", "regward.sysusers.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sysusers), "\nu regward ") {
		t.Errorf("regward.sysusers.conf does not declare the user regward")
	}
	for _, tc := range []struct {
		file, sub, dirKey, dirDirective, dirBase string
	}{
		{"regward.service", "serve", "data", "StateDirectory", "/var/lib/"},
		{"regward-gateway.service", "gateway", "cache-dir", "CacheDirectory", "/var/cache/"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			u := readUnit(t, filepath.Join("systemd", tc.file))
			for k, want := range hardening {
				if got := u.one(t, "Service", k); got != want {
					t.Errorf("%s=%s, want %s", k, got, want)
				}
			}
			sub, file, keys := unitConfig(t, u)
			if sub != tc.sub {
				t.Fatalf("ExecStart runs regward %s, want %s", sub, tc.sub)
			}
			// The one writable directory systemd makes is the one regward uses.
			if dir := tc.dirBase + u.one(t, "Service", tc.dirDirective); keys[tc.dirKey] != dir {
				t.Errorf("%s: %s is %v, but the unit's %s is %s", file, tc.dirKey, keys[tc.dirKey], tc.dirDirective, dir)
			}
			if tc.sub == "serve" {
				tryServeConfig(t, file, keys)
			} else {
				tryGatewayConfig(t, file, keys)
			}
		})
	}
}

// systemd-analyze verify reads the units as systemd would: unknown keys,
// bad values and unsafe users are reported.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	for _, name := range []string{"regward.service", "regward-gateway.service"} {
		data, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		// verify checks that the executable exists: use the built one.
		content := strings.ReplaceAll(string(data), "/usr/local/bin/regward", regwardtest.Binary(t))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", p).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
}

// The example egress firewall is valid nftables (checked, not loaded).
func TestEgressRulesParse(t *testing.T) {
	nft := requireTool(t, "nft", "nftables")
	out, err := exec.Command(nft, "-c", "-f", filepath.Join("ha", "egress.nft")).CombinedOutput()
	if err != nil && strings.Contains(string(out), "Operation not permitted") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nft -c needs CAP_NET_ADMIN: %s", out)
		}
		t.Skipf("skipping: nft -c needs CAP_NET_ADMIN: %s", out)
	}
	if err != nil {
		t.Fatalf("nft -c -f ha/egress.nft: %v\n%s", err, out)
	}
	// The rules must hold the two halves of the design: gateways out, the
	// rest refused.
	data, _ := os.ReadFile(filepath.Join("ha", "egress.nft"))
	for _, want := range []string{"policy drop", "ip saddr @gateways", "reject"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("egress.nft lacks %q", want)
		}
	}
}
