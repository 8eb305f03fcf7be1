package clienttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DockerCertsDir is where dockerd looks for per-registry CAs
// (HOST:PORT/ca.crt). It has no flag; a rootless dockerd would look
// elsewhere, which these tests do not use.
const DockerCertsDir = "/etc/docker/certs.d"

// systemBundles are the usual places of the system's PEM root bundle.
var systemBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu
	"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
	"/etc/ssl/cert.pem",                  // Alpine, macOS
}

// DockerOptions configure a private dockerd.
type DockerOptions struct {
	// ProxyURL becomes dockerd's HTTPS_PROXY and HTTP_PROXY (NO_PROXY is
	// empty). dockerd reads it once at start: to change the proxy or its
	// credential, start another dockerd.
	ProxyURL string
	// CAFiles maps "HOST:PORT" to a PEM CA file, installed for the life of
	// the daemon as DockerCertsDir/HOST:PORT/ca.crt.
	CAFiles map[string]string
	// CABundle is a PEM file of extra CAs. dockerd ignores certs.d for
	// Docker Hub names, so these go into its SSL_CERT_FILE together with
	// the system roots.
	CABundle string
	// StartTimeout bounds the wait for readiness; 0 means 60 s.
	StartTimeout time.Duration
}

// Docker is a private dockerd and the docker CLI bound to it.
type Docker struct {
	Host    string // unix://DIR/docker.sock, the CLI's -H
	LogFile string // dockerd's stdout and stderr

	dir      string
	cli      string
	cliEnv   []string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	certDirs []string
}

// StartDocker starts a private dockerd for the test and stops it at
// cleanup. It skips the test (fails it in CI) when docker is not installed
// or the daemon cannot start here, showing the daemon's log.
func StartDocker(t testing.TB, opts DockerOptions) *Docker {
	t.Helper()
	bins := Require(t, "dockerd", "docker", "containerd", "runc")
	d, err := startDocker(bins[0], bins[1], opts)
	if d == nil {
		t.Fatalf("start dockerd: %v", err)
	}
	// Registered before the start error is handled: a daemon that failed
	// half-way still has directories and CA files to remove.
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("stop dockerd: %v\n%s", err, d.logTail(4000))
		}
		if t.Failed() {
			t.Logf("dockerd log (%s):\n%s", d.LogFile, d.logTail(8000))
		}
		d.removeAll(t)
	})
	if errors.Is(err, errNoDaemon) {
		Unavailable(t, "%v\n%s", err, d.logTail(4000))
	}
	if err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	return d
}

// errNoDaemon marks a failure of the daemon itself (as opposed to a bad
// option), which skips the test outside CI.
var errNoDaemon = errors.New("dockerd did not start")

func startDocker(dockerd, cli string, opts DockerOptions) (*Docker, error) {
	// A short path under /tmp: the daemon's and containerd's unix sockets
	// live below it and socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "rwdock-")
	if err != nil {
		return nil, fmt.Errorf("make dockerd directory: %w", err)
	}
	d := &Docker{
		Host:    "unix://" + filepath.Join(dir, "docker.sock"),
		LogFile: filepath.Join(dir, "dockerd.log"),
		dir:     dir,
		cli:     cli,
		exited:  make(chan struct{}),
	}
	for _, sub := range []string{"data", "exec", "cli"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return d, fmt.Errorf("make dockerd directory: %w", err)
		}
	}
	// An empty daemon.json keeps the host's /etc/docker/daemon.json
	// (mirrors, proxies, insecure registries) out of the test.
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o600); err != nil {
		return d, fmt.Errorf("write daemon.json: %w", err)
	}
	// The CLI gets its own config directory so that no stored credential
	// or context of the host's user is used.
	d.cliEnv = cleanEnv([]string{"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"},
		"DOCKER_CONFIG="+filepath.Join(dir, "cli"))

	if err := d.installCerts(opts.CAFiles); err != nil {
		return d, err
	}
	bundle, err := writeBundle(filepath.Join(dir, "roots.pem"), opts.CABundle)
	if err != nil {
		return d, err
	}

	logf, err := os.Create(d.LogFile)
	if err != nil {
		return d, fmt.Errorf("create dockerd log: %w", err)
	}
	defer logf.Close()
	args := []string{
		"--config-file", conf,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", d.Host,
		"--storage-driver", "vfs",
		"--iptables=false",
		"--bridge=none",
		"--ip-forward=false",
	}
	cmd := exec.Command(dockerd, args...)
	cmd.Env = cleanEnv([]string{"SSL_CERT_FILE", "DOCKER_HOST", "DOCKER_CONFIG"},
		append(proxyEnv(opts.ProxyURL), "SSL_CERT_FILE="+bundle)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a daemon killed at cleanup does not
	// leave its managed containerd behind; Pdeathsig covers a test binary
	// that dies without cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return d, fmt.Errorf("%w: %w", errNoDaemon, err)
	}
	d.cmd = cmd
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()

	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	if err := d.waitReady(timeout); err != nil {
		return d, fmt.Errorf("%w: %w", errNoDaemon, err)
	}
	return d, nil
}

// installCerts creates DockerCertsDir/HOST:PORT/ca.crt for each entry. A
// directory that already exists belongs to someone else (another test's
// daemon on the same host and port would be a bug): it is an error.
func (d *Docker) installCerts(files map[string]string) error {
	for hostport, file := range files {
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			return fmt.Errorf("CAFiles key %q: want HOST:PORT: %w", hostport, err)
		}
		pem, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("CA file for %s: %w", hostport, err)
		}
		if err := os.MkdirAll(DockerCertsDir, 0o755); err != nil {
			return fmt.Errorf("make %s: %w", DockerCertsDir, err)
		}
		dir := filepath.Join(DockerCertsDir, hostport)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("install CA for %s: %w", hostport, err)
		}
		d.certDirs = append(d.certDirs, dir)
		if err := os.WriteFile(filepath.Join(dir, "ca.crt"), pem, 0o644); err != nil {
			return fmt.Errorf("install CA for %s: %w", hostport, err)
		}
	}
	return nil
}

// writeBundle writes the system roots followed by the extra CAs.
func writeBundle(path, extra string) (string, error) {
	var b []byte
	for _, f := range systemBundles {
		data, err := os.ReadFile(f)
		if err == nil {
			b = append(b, data...)
			break
		}
	}
	if extra != "" {
		data, err := os.ReadFile(extra)
		if err != nil {
			return "", fmt.Errorf("CA bundle: %w", err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		b = append(b, data...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return "", fmt.Errorf("write CA bundle: %w", err)
	}
	return path, nil
}

func (d *Docker) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			return fmt.Errorf("dockerd exited during start-up: %v", d.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, last = d.Run(ctx, "info", "--format", "{{.ServerVersion}}")
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("dockerd not ready after %v: %w", timeout, last)
}

// Run runs the docker CLI against this daemon and returns its combined output.
func (d *Docker) Run(ctx context.Context, args ...string) (string, error) {
	return run(ctx, d.cliEnv, d.cli, append([]string{"-H", d.Host}, args...)...)
}

// Pull runs `docker pull ref`; the output holds the daemon's error text
// when the pull is refused.
func (d *Docker) Pull(ctx context.Context, ref string) (string, error) {
	return d.Run(ctx, "pull", ref)
}

// Push runs `docker push ref`.
func (d *Docker) Push(ctx context.Context, ref string) (string, error) {
	return d.Run(ctx, "push", ref)
}

// Tag runs `docker tag src dst`.
func (d *Docker) Tag(ctx context.Context, src, dst string) error {
	if out, err := d.Run(ctx, "tag", src, dst); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
	}
	return nil
}

// ImageID returns the ID of a local image, or an error if there is none.
func (d *Docker) ImageID(ctx context.Context, ref string) (string, error) {
	out, err := d.Run(ctx, "image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
	}
	return strings.TrimSpace(out), nil
}

// RemoveImage removes a local image so the next pull fetches it again.
func (d *Docker) RemoveImage(ctx context.Context, ref string) error {
	if out, err := d.Run(ctx, "image", "rm", "--force", ref); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
	}
	return nil
}

// stop ends the daemon: SIGTERM so it stops its containerd, then SIGKILL to
// the whole process group if it lingers.
func (d *Docker) stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	select {
	case <-d.exited:
		return nil
	default:
	}
	pid := d.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGTERM dockerd %d: %w", pid, err)
	}
	select {
	case <-d.exited:
		// The managed containerd normally exits with the daemon; anything
		// left in the group is ours and would hold the exec root.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return nil
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-d.exited:
		return fmt.Errorf("dockerd %d ignored SIGTERM for 20s and was killed", pid)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("dockerd %d survived SIGKILL", pid)
	}
}

// Stop stops the daemon now (cleanup does it otherwise). A test uses it to
// prove a change takes effect only in a new daemon.
func (d *Docker) Stop() error { return d.stop() }

func (d *Docker) removeAll(t testing.TB) {
	for _, dir := range d.certDirs {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	}
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("remove dockerd directory: %v", err)
	}
}

func (d *Docker) logTail(n int) string {
	data, err := os.ReadFile(d.LogFile)
	if err != nil {
		return fmt.Sprintf("(no dockerd log: %v)", err)
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}
