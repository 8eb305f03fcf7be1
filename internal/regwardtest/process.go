package regwardtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// outputTail is how much of a process's output is kept: enough to explain
// a failure without holding a long run's whole log.
const outputTail = 256 << 10

// Process is one running regward with the tail of its output.
type Process struct {
	// Name is the process in messages, "regward serve" unless the
	// caller names it (replica-a, gateway-1).
	Name string

	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{}
	err    error // exit status, set before exited closes
}

// Run runs regward with args, the environment Environ(env...) and stdin,
// and returns its combined output.
func Run(t testing.TB, env []string, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = Environ(env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Start runs regward with args and the environment Environ(env...) for
// the rest of the test: see StartCommand.
func Start(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = Environ(env...)
	return StartCommand(t, cmd)
}

// StartCommand starts cmd, a regward command the caller made (its own
// environment, say). When the test ends the process is stopped (SIGTERM,
// then SIGKILL after five seconds), and its output is logged if the test
// failed.
func StartCommand(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p, err := Launch(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("--- output of %s (regward %s) ---\n%s", p.Name, strings.Join(redactArgs(cmd.Args[1:]), " "), p.Output())
		}
	})
	return p
}

// Launch starts cmd with its output kept, outside any test: the caller
// stops it. The process is killed if this one dies first (on Linux).
func Launch(cmd *exec.Cmd) (*Process, error) {
	p := &Process{Name: "regward", cmd: cmd, out: &tailBuffer{max: outputTail}, exited: make(chan struct{})}
	if len(cmd.Args) > 1 {
		p.Name += " " + cmd.Args[1]
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.Name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
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

// Output is the process's output so far (its last 256 KiB).
func (p *Process) Output() string { return p.out.String() }

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Err waits for the process to exit and returns its exit status: nil for
// exit 0.
func (p *Process) Err() error {
	<-p.exited
	return p.err
}

// Wait waits d for the process to exit and returns its exit status; past
// d it kills the process and says so.
func (p *Process) Wait(d time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		p.Kill()
		return fmt.Errorf("did not exit within %v", d)
	}
}

// Kill stops the process at once (SIGKILL), as a crashed node would.
func (p *Process) Kill() {
	if p.Running() {
		_ = p.cmd.Process.Kill()
	}
	<-p.exited
}

// Stop asks the process to shut down (SIGTERM) and kills it after grace.
func (p *Process) Stop(grace time.Duration) {
	if !p.Running() {
		return
	}
	_ = p.Signal(sigTerm)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.Kill()
	}
}

// Poll calls check every 50 ms until it returns nil, and fails when the
// process exits first, ctx ends or timeout passes, naming what it waited
// for and check's last error.
func (p *Process) Poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v) while waiting for %s", p.Name, p.err, what)
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %s: %w", p.Name, what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: no %s within %v (last: %v)", p.Name, what, timeout, last)
}

// WaitHTTP waits until url answers 200, failing the test when the process
// exits first or timeout passes.
func (p *Process) WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	if err := p.Poll(t.Context(), timeout, "200 from "+url, HTTPOK(url)); err != nil {
		t.Fatal(err)
	}
}

// WaitListening waits until something accepts TCP connections on addr,
// failing the test when the process exits first or timeout passes.
func (p *Process) WaitListening(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	if err := p.Poll(t.Context(), timeout, "listener on "+addr, Listening(addr)); err != nil {
		t.Fatal(err)
	}
}

// HTTPOK is a Poll check that url answers GET with 200.
func HTTPOK(url string) func(context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
}

// Listening is a Poll check that addr accepts TCP connections.
func Listening(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// tailBuffer keeps the last max bytes written to it.
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
