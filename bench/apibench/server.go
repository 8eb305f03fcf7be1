package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regward/regward/internal/pgtest"
)

const (
	org           = "acme"
	adminPassword = "apibench-admin-password"
)

// buildRegward builds cmd/regward into dir.
func buildRegward(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run apibench from inside the regward module")
	}
	bin := filepath.Join(dir, "regward")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/regward")
	build.Dir = filepath.Dir(mod)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build regward: %v\n%s", err, out)
	}
	return bin, nil
}

// logBuffer collects a process's output, shown when something fails.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		l.b.Reset()
		l.b.WriteString("[... earlier output dropped ...]\n")
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// server is one running `regward serve`.
type server struct {
	backend string
	addr    string // 127.0.0.1:PORT
	url     string
	token   string // acme's owner token from DATA/admin-token
	cmd     *exec.Cmd
	out     *logBuffer
	exited  chan struct{}
}

// startServer runs regward serve on dsn (empty: SQLite in dir) and waits
// until it is ready.
func startServer(ctx context.Context, bin, backend, dir, dsn string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(dir, "data-"+backend)
	args := []string{"serve", "--data", data, "--org", org, "--listen", addr, "--no-gateway", "--log-level", "warn",
		"--decision-log-retention", "0"}
	if dsn != "" {
		args = append(args, "--database", dsn)
	}
	s := &server{backend: backend, addr: addr, url: "http://" + addr, out: &logBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(benchEnv(), "REGWARD_ADMIN_PASSWORD="+adminPassword)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start regward serve: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\nregward output:\n%s", err, s.out.String())
	}
	tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("read admin token: %w", err)
	}
	s.token = strings.TrimSpace(string(tok))
	return s, nil
}

// benchEnv is the environment without REGWARD_* and proxy variables.
func benchEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "REGWARD_") || strings.HasSuffix(strings.ToLower(k), "_proxy") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return errors.New("regward serve exited before it was ready")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("regward serve not ready within %v", timeout)
}

// stop shuts the server down gracefully, killing it after ten seconds.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// cpuTime is the CPU time (user + system) the server has used so far.
func (s *server) cpuTime() (time.Duration, error) {
	return procCPU(s.cmd.Process.Pid)
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports.
const clockTick = 100

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	// f[0] is field 3 (state): utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// selfCPU is the CPU time the bench process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postgres is a throw-away PostgreSQL server.
type postgres struct {
	srv *pgtest.Server
	dsn string
}

// startPostgres starts a server through pgtest and describes it. pgtest
// runs PostgreSQL with fsync and synchronous_commit off on its command
// line, which ALTER SYSTEM cannot override: Save & Apply on it costs no
// disk flush, unlike SQLite's synchronous=FULL, and the description says so.
func startPostgres(ctx context.Context) (*postgres, string, error) {
	srv, err := pgtest.Start("")
	if err != nil {
		return nil, "", err
	}
	_, dsn, err := srv.CreateDatabase(ctx)
	if err != nil {
		srv.Stop()
		return nil, "", err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		srv.Stop()
		return nil, "", err
	}
	defer conn.Close(ctx)
	var version, fsync, syncCommit string
	err = conn.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')").
		Scan(&version, &fsync, &syncCommit)
	if err != nil {
		srv.Stop()
		return nil, "", err
	}
	desc := fmt.Sprintf("PostgreSQL %s on 127.0.0.1 (internal/pgtest: fsync=%s, synchronous_commit=%s)", version, fsync, syncCommit)
	return &postgres{srv: srv, dsn: dsn}, desc, nil
}

func (p *postgres) stop() error { return p.srv.Stop() }
