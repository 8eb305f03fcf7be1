package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultBinDir holds the PostgreSQL 15 server binaries on Debian.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// ErrUnavailable means the PostgreSQL binaries are not installed: tests
// skip on it outside CI.
var ErrUnavailable = errors.New("postgresql server binaries not available")

// readyTimeout bounds how long Start waits for the server to accept
// connections; a cold start on a loaded machine takes a few seconds.
const readyTimeout = 60 * time.Second

// Server is one running PostgreSQL server and its directory.
type Server struct {
	root string // the directory holding data, socket and log; removed by Stop
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster exits
	err  error         // its exit status, set before done closes

	stopOnce sync.Once
	stopErr  error
	dbs      atomic.Int64
}

// BinDir returns where the server binaries are looked up.
func BinDir() string {
	if d := os.Getenv("PGTEST_BINDIR"); d != "" {
		return d
	}
	return DefaultBinDir
}

// Available returns nil if initdb and postgres can be found, else an error
// wrapping ErrUnavailable that says what is missing.
func Available() error {
	for _, name := range []string{"initdb", "postgres"} {
		p := filepath.Join(BinDir(), name)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%w: no executable %s (install postgresql-15 or set PGTEST_BINDIR)", ErrUnavailable, p)
		}
	}
	return nil
}

// Start initializes a new cluster in a new directory under dir (the system
// temp directory when empty) and starts a server on a free 127.0.0.1 port.
// The server user must be able to reach dir. Stop shuts it down and removes
// the directory.
func Start(dir string) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		dir = os.TempDir()
	}
	root, err := os.MkdirTemp(dir, "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &Server{root: root}
	if err := s.init(cred); err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("start postgres in %s: %w", root, err)
	}
	// Another process may take the free port between our probe and the
	// server's bind; a fresh port on retry settles that.
	for attempt := 0; ; attempt++ {
		err = s.run(cred)
		if err == nil {
			return s, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "could not bind") {
			os.RemoveAll(root)
			return nil, fmt.Errorf("start postgres in %s: %w", root, err)
		}
	}
}

// serverCredential picks the OS user to run as: postgres refuses to run as
// root, so root hands the server to the "postgres" user.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: running as root and there is no postgres user to run the server as: %v", ErrUnavailable, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user's gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func (s *Server) command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(BinDir(), name), args...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	// Pdeathsig: a test binary that dies without Stop takes its server along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (s *Server) init(cred *syscall.Credential) error {
	if cred != nil {
		if err := os.Chown(s.root, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("hand %s to the postgres user: %w", s.root, err)
		}
	}
	out, err := s.command(cred, "initdb", "-D", filepath.Join(s.root, "data"), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions").CombinedOutput()
	if err != nil && cred != nil && errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("initdb: %w (the postgres user, uid %d, must be able to enter every directory above %s)", err, cred.Uid, s.root)
	}
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := os.Mkdir(filepath.Join(s.root, "sock"), 0o700); err != nil {
		return err
	}
	if cred != nil {
		return os.Chown(filepath.Join(s.root, "sock"), int(cred.Uid), int(cred.Gid))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run starts the postmaster and waits until it accepts connections.
func (s *Server) run(cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(s.root, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child holds its own descriptor
	// Durability settings are off: a test database is thrown away, and
	// fsync on every commit would make the suites several times slower.
	cmd := s.command(cred, "postgres", "-D", filepath.Join(s.root, "data"), "-p", strconv.Itoa(port),
		"-h", "127.0.0.1", "-k", filepath.Join(s.root, "sock"),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd, s.port, s.done = cmd, port, make(chan struct{})
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited (%v) before accepting connections:\n%s", s.err, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within %v (last error: %v):\n%s", readyTimeout, err, log)
		}
	}
}

func (s *Server) kill() {
	_ = s.cmd.Process.Kill() // it may have exited already
	<-s.done
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Dir is the server's directory (data, socket, postgres.log).
func (s *Server) Dir() string { return s.root }

// DSN returns the URL of a database on the server, as the superuser
// "postgres" without a password.
func (s *Server) DSN(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates a new, empty database with a unique name and
// returns its name and DSN.
func (s *Server) CreateDatabase(ctx context.Context) (name, dsn string, err error) {
	name = fmt.Sprintf("test_%d_%d", os.Getpid(), s.dbs.Add(1))
	if err := s.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	return name, s.DSN(name), nil
}

// DropDatabase drops a database, closing any connections still open to it.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := s.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func (s *Server) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop shuts the server down (fast shutdown, then SIGKILL after ten
// seconds) and removes its directory. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		// SIGINT is PostgreSQL's fast shutdown: it disconnects clients and
		// stops without waiting for them.
		if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.stopErr = fmt.Errorf("stop postgres: %w", err)
		}
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.kill()
			s.stopErr = errors.Join(s.stopErr, errors.New("stop postgres: no fast shutdown within 10s, killed"))
		}
		if err := os.RemoveAll(s.root); err != nil {
			s.stopErr = errors.Join(s.stopErr, fmt.Errorf("remove %s: %w", s.root, err))
		}
	})
	return s.stopErr
}
