package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/regward/regward/internal/client"
	"github.com/regward/regward/internal/gwca"
)

// Defaults for the zero values of Config.
const (
	DefaultListen = "127.0.0.1:3128"
	DefaultTTL    = 24 * time.Hour
	DefaultPoll   = 2 * time.Second
)

// drainTimeout is how long connections of a replaced sign-in may finish
// before they are cut: a pull in progress completes, a new one is decided
// under the new sign-in.
const drainTimeout = 5 * time.Second

// Config configures an Agent. The zero value runs with the defaults.
type Config struct {
	Listen       string // proxy address; "": DefaultListen
	SessionPath  string // "": client.SessionPath()
	RegistryJSON string // "": client.ResolveRegistryJSONPath("")
	// Cache keeps the snapshot on disk; its zero value is the user's cache
	// directory (what `regward login` writes).
	Cache client.SnapshotCache
	// TTL is how long a snapshot is enforced while the control plane is out
	// of reach; after it, every request is denied. 0: DefaultTTL.
	TTL time.Duration
	// Resolve maps a host to "IP:PORT" to dial instead of resolving it.
	Resolve map[string]string
	// Poll is how often the session file and registry.json are looked at
	// for changes; 0: DefaultPoll.
	Poll   time.Duration
	HTTP   *http.Client // to the control plane; nil: the Follower's own
	Logger *slog.Logger
	Name   string // this agent in logs; "": "agent"
	// UpstreamGateway chains allowed requests to a central gateway; the
	// signed-in user's name and token become its proxy credentials unless
	// the URL carries its own.
	UpstreamGateway *url.URL
	// CADir holds the agent's own CA (created there on first use) for the
	// registries whose rules need TLS inspection; "": the "agent-ca"
	// directory beside the session file. Unused with UpstreamGateway, which
	// inspects for the agent.
	CADir string
	// UpstreamRoots verify registries' certificates when inspecting; nil:
	// the system roots.
	UpstreamRoots *x509.CertPool
}

// Agent is the local gateway. Create it with New and run it with Run.
type Agent struct {
	cfg       Config
	log       *slog.Logger
	statePath string
	key       string
	ca        *gwca.CA // nil when chained to an upstream gateway
	started   time.Time

	proxyLn net.Listener
	ctlLn   net.Listener

	reloadMu sync.Mutex // one reload at a time
	stopping bool       // guarded by reloadMu: no new epoch after Run ends
	mu       sync.RWMutex
	cur      *epoch
}

// New checks cfg and opens the proxy and control listeners, so that the
// caller learns of a busy port before anything runs.
func New(cfg Config) (*Agent, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < 0 {
		return nil, errors.New("agent: the policy TTL must be positive")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Name == "" {
		cfg.Name = "agent"
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, started: time.Now().UTC()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionPath == "" {
		p, err := client.SessionPath()
		if err != nil {
			return nil, err
		}
		a.cfg.SessionPath = p
	}
	var err error
	if a.statePath, err = client.AgentStatePath(a.cfg.SessionPath); err != nil {
		return nil, err
	}
	if err := a.checkNoOtherAgent(); err != nil {
		return nil, err
	}
	if cfg.UpstreamGateway == nil {
		if a.cfg.CADir == "" {
			a.cfg.CADir = filepath.Join(filepath.Dir(a.cfg.SessionPath), "agent-ca")
		}
		if a.ca, err = gwca.LoadOrCreate(a.cfg.CADir, "regward agent CA"); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	if err := checkLoopback(cfg.Listen); err != nil {
		return nil, err
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	a.key = hex.EncodeToString(key[:])
	if a.proxyLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("agent: --listen %s: %w", cfg.Listen, err)
	}
	if a.ctlLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		a.proxyLn.Close()
		return nil, fmt.Errorf("agent: control endpoint: %w", err)
	}
	return a, nil
}

// checkLoopback refuses a listen address beyond loopback: clients of the
// agent are not asked who they are, so only this machine may reach it.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("agent: --listen %q: %w", addr, err)
	}
	if !client.IsLoopback(host) {
		return fmt.Errorf("agent: --listen %s: the agent passes traffic for the signed-in user without asking clients who they are, so it listens on loopback only (127.0.0.1 or ::1)", addr)
	}
	return nil
}

// checkNoOtherAgent refuses to start beside a live agent of the same
// sign-in: both would claim the state file.
func (a *Agent) checkNoOtherAgent() error {
	st, err := client.ReadAgentState(a.statePath)
	if err != nil {
		return nil // none, or a leftover that cannot be used anyway
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ac := &client.AgentControl{State: st}
	if _, err := ac.Status(ctx); err == nil {
		return fmt.Errorf("agent: another agent (pid %d) already runs for this sign-in on %s", st.PID, st.Listen)
	}
	return nil
}

// Addr is the proxy's address.
func (a *Agent) Addr() net.Addr { return a.proxyLn.Addr() }

// Run serves until ctx ends, then stops the gateway (letting transfers
// finish for a few seconds) and removes the state file.
func (a *Agent) Run(ctx context.Context) error {
	defer a.proxyLn.Close()
	defer a.ctlLn.Close()
	if err := a.reload(ctx); err != nil {
		return err
	}
	st := client.AgentState{
		PID: os.Getpid(), Listen: a.proxyLn.Addr().String(), Control: a.ctlLn.Addr().String(),
		Key: a.key, StartedAt: a.started,
	}
	if a.ca != nil {
		st.CAFile = filepath.Join(a.cfg.CADir, gwca.CertFile)
	}
	if err := client.WriteAgentState(a.statePath, st); err != nil {
		a.stopEpoch(a.swap(nil))
		return fmt.Errorf("agent: publish state: %w", err)
	}
	defer a.removeState()

	ctl := &http.Server{
		Handler:           a.controlHandler(ctx),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() {
		if err := ctl.Serve(a.ctlLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("agent control endpoint: %w", err)
		}
	}()
	go func() { errc <- a.acceptLoop() }()
	go a.watch(ctx)
	a.log.Info("agent listening", "addr", st.Listen, "control", st.Control, "session", a.cfg.SessionPath)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	a.proxyLn.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = ctl.Shutdown(sctx)
	a.reloadMu.Lock()
	a.stopping = true
	a.stopEpoch(a.swap(nil))
	a.reloadMu.Unlock()
	return err
}

// removeState deletes the state file if it is still this agent's.
func (a *Agent) removeState() {
	if st, err := client.ReadAgentState(a.statePath); err == nil && st.Key == a.key {
		if err := os.Remove(a.statePath); err != nil {
			a.log.Warn("remove agent state", "err", err)
		}
	}
}

// acceptLoop hands each client connection to the current sign-in's gateway.
func (a *Agent) acceptLoop() error {
	for {
		c, err := a.proxyLn.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			a.log.Warn("agent accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		a.mu.RLock()
		ep := a.cur
		if ep == nil || !ep.deliver(c) {
			c.Close()
		}
		a.mu.RUnlock()
	}
}

// watch reloads when the session file or registry.json changes, so that a
// sign-in made while the agent was unreachable still applies.
func (a *Agent) watch(ctx context.Context) {
	t := time.NewTicker(a.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.RLock()
		var sig signature
		running := a.cur != nil
		if running {
			sig = a.cur.sig
		}
		a.mu.RUnlock()
		if !running || a.signature() == sig {
			continue
		}
		if err := a.reload(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("reload after a change", "err", err)
		}
	}
}

func (a *Agent) controlHandler(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.Report())
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if err := a.reload(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, a.Report())
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get(client.AgentKeyHeader)
		if subtle.ConstantTimeCompare([]byte(got), []byte(a.key)) != 1 {
			http.Error(w, "the agent's control endpoint needs the key from its state file", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Report is the agent's own account of what it enforces.
func (a *Agent) Report() client.AgentReport {
	r := client.AgentReport{
		Listen: a.proxyLn.Addr().String(), PID: os.Getpid(), StartedAt: a.started,
	}
	a.mu.RLock()
	ep := a.cur
	var (
		follow *follower
		s      client.Session
	)
	if ep != nil {
		r.Enforced, r.Reason, follow, s = ep.enforced, ep.reason, ep.follow, ep.sess
	}
	a.mu.RUnlock()
	switch {
	case ep == nil:
		r.State, r.Reason = client.AgentSignedOut, "the agent is stopping"
		return r
	case follow == nil:
		r.State = client.AgentSignedOut
		return r
	}
	r.Server, r.User, r.Org = s.Server, s.Username, s.Org
	fs := follow.status(context.Background())
	r.PolicyVersion, r.PolicyFetchedAt = fs.version, fs.fetchedAt
	if !fs.fetchedAt.IsZero() {
		r.PolicyExpiresAt = fs.fetchedAt.Add(a.cfg.TTL)
	}
	switch {
	case fs.err == nil:
		r.State = client.AgentEnforcing
	case expired(fs.err):
		r.State, r.Reason = client.AgentExpired, fs.err.Error()
	default:
		r.State, r.Reason = client.AgentNoPolicy, fs.err.Error()
	}
	return r
}

// gatewayLogger tags the engine's log lines with this agent.
func (a *Agent) gatewayLogger() *slog.Logger {
	return a.log.With("component", "gateway")
}
