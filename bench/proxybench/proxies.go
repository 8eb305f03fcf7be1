package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proxy is one running proxy process.
type proxy struct {
	name   string
	addr   string // 127.0.0.1:PORT
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// proxyKind starts a fresh instance of one proxy. Every scenario gets a
// fresh process, so memory and warm caches of one do not leak into the next.
type proxyKind struct {
	name    string
	version string
	start   func(ctx context.Context, dir string, o *origin) (*proxy, error)
}

// freePort returns a port that was free a moment ago; Squid and tinyproxy
// take their port from a file, so it cannot be :0.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startProcess(ctx context.Context, name, dir, bin string, args ...string) (*proxy, error) {
	logPath := filepath.Join(dir, name+".out")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group, and killed with us if we die: the bench must not
	// leave proxies behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proxy{name: name, log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// ready waits until an allowed CONNECT gets 200 and a denied one 403: a
// proxy that answers but is configured wrongly must not be measured.
func (p *proxy) ready(ctx context.Context, o *origin, deny string) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited during start-up (%v); log %s:\n%s", p.name, p.err, p.log, tail(p.log, 2000))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		last = p.probe(ctx, o, deny)
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 30s: %v; log %s:\n%s", p.name, last, p.log, tail(p.log, 2000))
}

func (p *proxy) probe(ctx context.Context, o *origin, deny string) error {
	if _, err := fetch(ctx, p.addr, o, "/small", 5*time.Second); err != nil {
		return fmt.Errorf("allowed CONNECT %s: %w", o.addr, err)
	}
	c, err := dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	code, _, err := connect(c, deny)
	if err != nil {
		return fmt.Errorf("denied CONNECT %s: %w", deny, err)
	}
	if code != 403 {
		return fmt.Errorf("denied CONNECT %s: status %d, want 403", deny, code)
	}
	return nil
}

// stop sends SIGTERM, then SIGKILL to the process group after 5 s.
func (p *proxy) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.exited
	}
	// Helpers a proxy forked into its group go with it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// squidKind runs Squid with a config allowing CONNECT to the origin only.
// Its access log is off: that is the cheapest Squid, a conservative bar.
func squidKind(deny string) proxyKind {
	return proxyKind{name: "squid", version: firstLine("squid", "-v"), start: func(ctx context.Context, dir string, o *origin) (*proxy, error) {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		_, oport, _ := net.SplitHostPort(o.addr)
		sdir := filepath.Join(dir, "squid")
		if err := os.Mkdir(sdir, 0o755); err != nil {
			return nil, fmt.Errorf("squid directory: %w", err)
		}
		var effective string
		if os.Geteuid() == 0 {
			// Squid will not run as root: it switches to its
			// cache_effective_user, which must be able to write here.
			u, err := user.Lookup("proxy")
			if err != nil {
				return nil, fmt.Errorf("squid runs as user proxy when started as root: %w", err)
			}
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			if err := os.Chown(sdir, uid, gid); err != nil {
				return nil, fmt.Errorf("squid directory: %w", err)
			}
			effective = "cache_effective_user proxy\n"
		}
		conf := fmt.Sprintf(`http_port 127.0.0.1:%d
%spid_filename %[3]s/squid.pid
cache_log %[3]s/cache.log
access_log none
cache deny all
cache_mem 0 MB
coredump_dir %[3]s
shutdown_lifetime 0 seconds
pinger_enable off
max_filedescriptors 16384
acl origin dst 127.0.0.1
acl origin_port port %[4]s
acl CONNECT method CONNECT
http_access allow CONNECT origin origin_port
http_access deny all
`, port, effective, sdir, oport)
		cf := filepath.Join(sdir, "squid.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			return nil, fmt.Errorf("squid config: %w", err)
		}
		p, err := startProcess(ctx, "squid", sdir, "squid", "-N", "-f", cf)
		if err != nil {
			return nil, err
		}
		p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return p, nil
	}}
}

// tinyproxyKind runs tinyproxy allowing CONNECT to the origin's host
// (Filter) and port (ConnectPort) only, logging only critical events.
func tinyproxyKind() proxyKind {
	return proxyKind{name: "tinyproxy", version: firstLine("tinyproxy", "-v"), start: func(ctx context.Context, dir string, o *origin) (*proxy, error) {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		_, oport, _ := net.SplitHostPort(o.addr)
		tdir := filepath.Join(dir, "tinyproxy")
		if err := os.Mkdir(tdir, 0o755); err != nil {
			return nil, fmt.Errorf("tinyproxy directory: %w", err)
		}
		filter := filepath.Join(tdir, "filter")
		if err := os.WriteFile(filter, []byte(`^127\.0\.0\.1$`+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("tinyproxy filter: %w", err)
		}
		conf := fmt.Sprintf(`Port %d
Listen 127.0.0.1
Timeout 600
MaxClients 8192
Allow 127.0.0.1
ConnectPort %s
Filter "%s"
FilterDefaultDeny Yes
FilterURLs Off
FilterType ere
LogLevel Critical
LogFile "%[4]s/tinyproxy.log"
PidFile "%[4]s/tinyproxy.pid"
DisableViaHeader Yes
`, port, oport, filter, tdir)
		cf := filepath.Join(tdir, "tinyproxy.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			return nil, fmt.Errorf("tinyproxy config: %w", err)
		}
		p, err := startProcess(ctx, "tinyproxy", tdir, "tinyproxy", "-d", "-c", cf)
		if err != nil {
			return nil, err
		}
		p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return p, nil
	}}
}

// regwardKind runs `BIN gateway --proxy-listen ... --policy-file ... --org
// bench --allow-anonymous`: the real binary, or gwmain with the same flags.
func regwardKind(bin, listenFlag, label string) proxyKind {
	return proxyKind{name: "regward", version: label, start: func(ctx context.Context, dir string, o *origin) (*proxy, error) {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		gdir := filepath.Join(dir, "regward")
		if err := os.Mkdir(gdir, 0o755); err != nil {
			return nil, fmt.Errorf("regward directory: %w", err)
		}
		// The policy file as a user writes it (DESIGN.md "Policy model"):
		// the bench treats regward as a black box, like the other proxies.
		pf := filepath.Join(gdir, "policy.yaml")
		if err := os.WriteFile(pf, []byte(fmt.Sprintf(gatewayPolicy, o.addr)), 0o644); err != nil {
			return nil, fmt.Errorf("policy file: %w", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		pr, err := startProcess(ctx, "regward", gdir, bin, "gateway",
			listenFlag, addr, "--policy-file", pf, "--org", "bench", "--allow-anonymous")
		if err != nil {
			return nil, err
		}
		pr.addr = addr
		return pr, nil
	}}
}

// gatewayPolicy allows the origin (an IP literal with its port) and
// nothing else; image rules are off, as they do not apply to tunnels to
// hosts other than Docker Hub.
const gatewayPolicy = `org: bench
registryAccess:
  enabled: true
  registries:
    - host: "%s"
      description: bench origin
imageAccess:
  enabled: false
  officialImages: allowed
  verifiedPublisherImages: allowed
  sponsoredOSSImages: allowed
  communityImages: allowed
  orgNamespaces: []
  repositoryAllowlist: []
namespaceAccess:
  pushOnlyToOrgNamespaces: false
`

// buildGateway returns the gateway binary to measure, its listen flag and
// how it was made: cmd/regward when its `gateway` command takes a policy
// file, else gwmain.
func buildGateway(ctx context.Context, dir, mode string) (bin, listenFlag, label string, err error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", "", "", err
	}
	if mode == "auto" || mode == "regward" {
		bin = filepath.Join(dir, "regward-bin")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/regward")
		build.Dir = root
		out, berr := build.CombinedOutput()
		if berr == nil {
			out, berr = exec.CommandContext(ctx, bin, "gateway", "--help").CombinedOutput()
		}
		help := string(out)
		if berr == nil && !strings.Contains(help, "--policy-file") {
			berr = errors.New("`regward gateway` has no --policy-file flag yet")
		}
		if berr == nil {
			// The command names its address flag --proxy-listen (as serve
			// does); an early plan said --listen. Use whichever it lists.
			listenFlag = "--proxy-listen"
			if !strings.Contains(help, "--proxy-listen") && regexp.MustCompile(`(?m)^\s+(-\w, )?--listen\b`).MatchString(help) {
				listenFlag = "--listen"
			}
			return bin, listenFlag, "regward gateway (cmd/regward)", nil
		}
		if mode == "regward" {
			return "", "", "", fmt.Errorf("build cmd/regward with a gateway command: %v\n%s", berr, out)
		}
	}
	bin = filepath.Join(dir, "gwmain-bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/proxybench/internal/gwmain")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", "", fmt.Errorf("build gwmain: %v\n%s", err, out)
	}
	return bin, "--proxy-listen", "gateway engine via bench/proxybench/internal/gwmain", nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run proxybench from inside the regward module")
	}
	return filepath.Dir(mod), nil
}

var versionRE = regexp.MustCompile(`\d+\.\d+(\.\d+)?`)

// firstLine returns the version a command prints, or "" if it cannot run.
func firstLine(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	if v := versionRE.FindString(line); v != "" {
		return v
	}
	return strings.TrimSpace(line)
}

// descendants returns pid and every process below it.
func descendants(pid int) ([]int, error) {
	children := map[int][]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := statFields(p)
		if err != nil || len(f) < 2 {
			continue // gone meanwhile
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}

// statFields returns the fields of /proc/PID/stat after the command name
// (which is in parentheses and may hold spaces): [0] is the state, [1]
// the parent pid, [11] and [12] user and system time in clock ticks.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("pid %d: odd stat line", pid)
	}
	return strings.Fields(s[i+1:]), nil
}

// treeRSS sums VmRSS (bytes) over pid and all its descendants.
func treeRSS(pid int) (int64, error) {
	pids, err := descendants(pid)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range pids {
		rss, err := vmRSS(p)
		if err != nil {
			if p == pid {
				return 0, err
			}
			continue
		}
		total += rss
	}
	return total, nil
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times; it is 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// processCPU is one process's user and system CPU time.
func processCPU(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil || len(f) < 13 {
		return 0, fmt.Errorf("CPU time of %d: %v", pid, err)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * clockTick, nil
}

// treeCPU sums user and system CPU time over pid and its descendants.
func treeCPU(pid int) (time.Duration, error) {
	pids, err := descendants(pid)
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, p := range pids {
		f, err := statFields(p)
		if err != nil || len(f) < 13 {
			if p == pid {
				return 0, fmt.Errorf("CPU time of %d: %v", pid, err)
			}
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * clockTick, nil
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("pid %d: odd VmRSS line %q", pid, line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("pid %d: VmRSS: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS", pid)
}
