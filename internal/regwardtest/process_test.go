package regwardtest

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEnvironDropsRegwardAndProxyVariables(t *testing.T) {
	t.Setenv("REGWARD_SERVER", "http://example.invalid")
	t.Setenv("HTTPS_PROXY", "http://proxy.invalid")
	t.Setenv("no_proxy", "example.invalid")
	t.Setenv("REGWARDTEST_KEPT", "1")
	env := Environ("REGWARD_TOKEN=t")
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == "REGWARD_SERVER" || k == "HTTPS_PROXY" || k == "no_proxy" {
			t.Errorf("Environ kept %s", kv)
		}
	}
	if !slices.Contains(env, "REGWARDTEST_KEPT=1") || env[len(env)-1] != "REGWARD_TOKEN=t" {
		t.Errorf("Environ lost a variable or the extra one: %q", env)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("0123456"))
	b.Write([]byte("789abc"))
	if got, want := b.String(), "[... 5 bytes dropped ...]\n56789abc"; got != want {
		t.Errorf("tail: %q, want %q", got, want)
	}
}

func TestRedactArgsHidesTokens(t *testing.T) {
	got := redactArgs([]string{"gateway", "--token", "rw_secret", "--token=rw_other", "--proxy-listen", "x"})
	want := []string{"gateway", "--token", "REDACTED", "--token=REDACTED", "--proxy-listen", "x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("redactArgs (-want +got):\n%s", diff)
	}
}

// A process that exits while Poll waits ends the wait at once, with its
// exit status; Wait past its limit kills the process and says so.
func TestProcessExitAndWaitLimit(t *testing.T) {
	p, err := Launch(exec.Command("sh", "-c", "echo starting; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.Poll(context.Background(), time.Minute, "never", func(context.Context) error { return context.DeadlineExceeded })
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || time.Since(start) > 10*time.Second {
		t.Fatalf("Poll on a process that exits: %v after %v", err, time.Since(start))
	}
	if p.Running() || p.Output() != "starting\n" {
		t.Fatalf("after exit: running %v, output %q", p.Running(), p.Output())
	}

	p, err = Launch(exec.Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(100 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not exit within") {
		t.Fatalf("Wait on a process that keeps running: %v", err)
	}
	if p.Running() {
		t.Fatal("Wait past its limit left the process running")
	}
}
