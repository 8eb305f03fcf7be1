package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regward/regward/internal/pgtest"
	"github.com/regward/regward/internal/regwardtest"
)

const (
	org           = "acme"
	adminPassword = "apibench-admin-password"
)

// server is one running `regward serve`.
type server struct {
	backend string
	addr    string // 127.0.0.1:PORT
	url     string
	token   string // acme's owner token from DATA/admin-token
	proc    *regwardtest.Process
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
	s := &server{backend: backend, addr: addr, url: "http://" + addr}
	cmd := exec.Command(bin, args...)
	cmd.Env = regwardtest.Environ("REGWARD_ADMIN_PASSWORD=" + adminPassword)
	if s.proc, err = regwardtest.Launch(cmd); err != nil {
		return nil, err
	}
	if err := s.proc.Poll(ctx, 60*time.Second, "200 from "+s.url+"/readyz", regwardtest.HTTPOK(s.url+"/readyz")); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\nregward output:\n%s", err, s.proc.Output())
	}
	tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("read admin token: %w", err)
	}
	s.token = strings.TrimSpace(string(tok))
	return s, nil
}

// stop shuts the server down gracefully, killing it after ten seconds.
func (s *server) stop() { s.proc.Stop(10 * time.Second) }

// cpuTime is the CPU time (user + system) the server has used so far.
func (s *server) cpuTime() (time.Duration, error) {
	return procCPU(s.proc.Pid())
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
