package scale

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regward/regward/internal/pgtest"
)

// regwardBin is the regward binary, built once for the whole package.
var regwardBin string

// TestMain builds regward once, or takes the binary named by
// REGWARD_TEST_BINARY (a CI job that already built it).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regward-scale-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
	regwardBin = os.Getenv("REGWARD_TEST_BINARY")
	if regwardBin == "" {
		regwardBin = filepath.Join(dir, "regward")
		build := exec.Command("go", "build", "-o", regwardBin, "github.com/regward/regward/cmd/regward")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "scale: build regward:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	// As pgtest.Main, plus removing the binary.
	code := m.Run()
	if err := pgtest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireEnv skips the test with reason, or fails it under CI=true.
func requireEnv(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("required in CI: %s", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// freeAddr returns a 127.0.0.1 address nothing listens on at the moment.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tailBuffer keeps the last max bytes written to it: enough of a process's
// log to explain a failure without holding a long run's whole output.
type tailBuffer struct {
	mu      sync.Mutex
	b       []byte
	max     int
	dropped int
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - w.max; over > 0 {
		w.dropped += over
		w.b = append(w.b[:0], w.b[over:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped > 0 {
		return fmt.Sprintf("[... %d bytes dropped ...]\n%s", w.dropped, w.b)
	}
	return string(w.b)
}

// process is one regward process started by a test.
type process struct {
	name   string
	args   []string
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{}
	err    error // exit status, set before exited closes
}

// startProcess runs regward with args and env added to the test's
// environment. When the test ends the process is stopped (SIGTERM, then
// SIGKILL after five seconds), and its output is logged if the test failed.
func startProcess(t *testing.T, name string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, args: args, out: &tailBuffer{max: 256 << 10}, exited: make(chan struct{})}
	p.cmd = exec.Command(regwardBin, args...)
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	// A test binary that dies without its cleanups takes its children along.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(5 * time.Second)
		if t.Failed() {
			t.Logf("--- output of %s (regward %s) ---\n%s", p.name, strings.Join(redactArgs(p.args), " "), p.out.String())
		}
	})
	return p
}

// cleanEnv is the environment without REGWARD_* and proxy variables, so
// that nothing of the host's set-up reaches the processes under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "REGWARD_"):
		case strings.EqualFold(k, "http_proxy"), strings.EqualFold(k, "https_proxy"),
			strings.EqualFold(k, "no_proxy"), strings.EqualFold(k, "all_proxy"):
		default:
			env = append(env, kv)
		}
	}
	return env
}

// redactArgs hides the value of --token in logged command lines.
func redactArgs(args []string) []string {
	out := append([]string{}, args...)
	for i := range out {
		if out[i] == "--token" && i+1 < len(out) {
			out[i+1] = "REDACTED"
		}
		if strings.HasPrefix(out[i], "--token=") {
			out[i] = "--token=REDACTED"
		}
	}
	return out
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill stops the process at once (SIGKILL), as a crashed node would.
func (p *process) kill() {
	if p.running() {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}

// pause stops the process (SIGSTOP) without closing its connections: the
// kernel keeps accepting and acknowledging, nothing answers, as when a host
// freezes or a network drops packets silently. resume undoes it.
func (p *process) pause(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("pause %s: %v", p.name, err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGCONT) })
}

func (p *process) resume(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("resume %s: %v", p.name, err)
	}
}

// stop asks the process to shut down and kills it after grace.
func (p *process) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.kill()
	}
}

// waitHTTP polls url until it answers 200, failing the test when the
// process exits first or timeout passes.
func (p *process) waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before %s answered (%v):\n%s", p.name, url, p.err, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s: %s did not answer 200 within %v (last: %s)", p.name, url, timeout, last)
}

// waitListening waits until something accepts TCP connections on addr.
func (p *process) waitListening(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before listening on %s (%v):\n%s", p.name, addr, p.err, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not listen on %s within %v", p.name, addr, timeout)
}

// testContext is a context bounded by d and by the test's deadline.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	if dl, ok := t.Deadline(); ok {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, dl.Add(-5*time.Second))
		prev := cancel
		cancel = func() { c2(); prev() }
	}
	t.Cleanup(cancel)
	return ctx
}
