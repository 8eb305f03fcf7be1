package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"

	"github.com/regward/regward/internal/client"
	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/inspect"
	"github.com/regward/regward/internal/policy"
)

// epoch is the agent under one sign-in (or none): a gateway engine whose
// identity and policy source are fixed. A change of sign-in starts a new
// epoch and drains the old one, so that no request is decided under a
// mix of the two.
type epoch struct {
	gw     *gateway.Gateway
	in     *inspect.Inspector // nil when not inspecting
	ln     *handoff
	served chan struct{}

	sess     client.Session // zero when signed out
	follow   *follower      // nil when signed out
	reason   string         // why traffic is refused, when signed out
	enforced bool           // registry.json requires sign-in
	sig      signature
}

// signature identifies the content of the files an epoch was built from:
// both are small, and a hash sees a change that keeps size and mtime.
type signature struct {
	session, registryJSON [32]byte
}

func fileHash(path string) [32]byte {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{} // missing and unreadable look alike: both reload
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, 1<<20)); err != nil {
		return [32]byte{}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func (a *Agent) signature() signature {
	return signature{
		session:      fileHash(a.cfg.SessionPath),
		registryJSON: fileHash(client.ResolveRegistryJSONPath(a.cfg.RegistryJSON)),
	}
}

var errNoSignIn = errors.New("nobody is signed in: run `regward login`")

// reload reads registry.json and the session and starts a new epoch for
// what they say.
func (a *Agent) reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.stopping {
		return nil
	}
	sig := a.signature()
	enf, enfErr := client.LoadEnforcement(a.cfg.RegistryJSON)
	for _, w := range enf.Warnings {
		a.log.Warn(w)
	}
	sess, sessErr := client.LoadSession(a.cfg.SessionPath)

	var reason string
	switch {
	case enfErr != nil:
		reason = "registry.json is unusable, so no sign-in is accepted: " + enfErr.Error()
	case errors.Is(sessErr, os.ErrNotExist):
		reason = errNoSignIn.Error()
	case sessErr != nil:
		reason = sessErr.Error()
	case !enf.Allows(sess.Org):
		reason = fmt.Sprintf("signed in to organization %s, but %s", sess.Org, enf.Refusal())
	}

	// A sign-in that is refused for the same reason as now needs no new
	// gateway; any other change does, even the same sign-in again: its
	// new Follower refetches the policy at once (`regward login` again
	// applies a change sooner, as Docker's sign-out and in does).
	a.mu.Lock()
	if cur := a.cur; reason != "" && cur != nil && cur.follow == nil && cur.reason == reason {
		cur.sig, cur.enforced = sig, enf.Enforced
		a.mu.Unlock()
		return nil
	}
	a.mu.Unlock()

	ep, err := a.newEpoch(ctx, sess, reason, enf.Enforced)
	if err != nil {
		return err
	}
	ep.sig = sig
	if reason != "" {
		a.log.Info("refusing traffic", "reason", reason)
	} else {
		a.log.Info("enforcing for the signed-in user", "user", sess.Username, "org", sess.Org, "server", sess.Server)
	}
	old := a.swap(ep)
	go a.stopEpoch(old)
	return nil
}

// newEpoch builds the gateway for a sign-in, or a refusing one when reason
// is not empty.
func (a *Agent) newEpoch(ctx context.Context, sess client.Session, reason string, enforced bool) (*epoch, error) {
	ep := &epoch{ln: newHandoff(a.proxyLn.Addr()), served: make(chan struct{}), reason: reason, enforced: enforced}
	cfg := gateway.Config{
		Resolve: a.cfg.Resolve,
		Name:    a.cfg.Name,
		Logger:  a.gatewayLogger(),
	}
	if reason != "" {
		// Clients without credentials get the sign-in 407; so do those
		// with any: nobody may use the agent now.
		cfg.Auth, cfg.Policies = refuseAll{}, noPolicy{reason: reason}
	} else {
		ep.sess = sess
		var err error
		if ep.follow, err = a.startFollower(ctx, sess); err != nil {
			return nil, err
		}
		cfg.Auth = sessionAuth{sess: sess}
		cfg.Policies = ep.follow
		cfg.AllowAnonymous, cfg.AnonymousOrg = true, sess.Org
		if u := a.cfg.UpstreamGateway; u != nil {
			up := *u
			if up.User == nil {
				up.User = url.UserPassword(sess.Username, sess.Token)
			}
			cfg.Upstream = &up
		} else if a.ca != nil {
			in, err := inspect.New(inspect.Options{CA: a.ca, UpstreamRoots: a.cfg.UpstreamRoots, Policies: ep.follow, Logger: a.gatewayLogger(), Name: a.cfg.Name})
			if err != nil {
				ep.follow.stop()
				return nil, fmt.Errorf("agent: %w", err)
			}
			cfg.Interceptor, ep.in = in, in
		}
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		if ep.follow != nil {
			ep.follow.stop()
		}
		return nil, fmt.Errorf("agent: %w", err)
	}
	ep.gw = gw
	go func() {
		defer close(ep.served)
		if err := gw.Serve(ep.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("agent gateway stopped", "err", err)
		}
	}()
	return ep, nil
}

// swap makes ep current and returns the previous epoch.
func (a *Agent) swap(ep *epoch) *epoch {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.cur
	a.cur = ep
	return old
}

// stopEpoch drains a replaced epoch: its connections get drainTimeout to
// finish, then they are closed and its follower stops.
func (a *Agent) stopEpoch(ep *epoch) {
	if ep == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if ep.in != nil {
		ep.in.Drain()
	}
	_ = ep.gw.Shutdown(ctx)
	<-ep.served
	if ep.follow != nil {
		ep.follow.stop()
	}
}

// sessionAuth accepts the signed-in user's own credential, for clients
// configured with one; clients without any are the signed-in user anyway.
type sessionAuth struct{ sess client.Session }

func (s sessionAuth) Authenticate(_ context.Context, username, token string) (gateway.Identity, error) {
	if username != s.sess.Username || subtle.ConstantTimeCompare([]byte(token), []byte(s.sess.Token)) != 1 {
		return gateway.Identity{}, gateway.ErrUnauthenticated
	}
	return gateway.Identity{User: s.sess.Username, Org: s.sess.Org, Owner: s.sess.Role == "owner"}, nil
}

// refuseAll is the authenticator of a signed-out agent.
type refuseAll struct{}

func (refuseAll) Authenticate(context.Context, string, string) (gateway.Identity, error) {
	return gateway.Identity{}, gateway.ErrUnauthenticated
}

// noPolicy is never reached (nobody authenticates) but keeps the engine's
// contract of a non-nil source, failing closed if it ever is.
type noPolicy struct{ reason string }

func (n noPolicy) Policy(context.Context, string) (*policy.Compiled, int64, error) {
	return nil, 0, errors.New(n.reason)
}

// handoff is a net.Listener fed by the agent's accept loop.
type handoff struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

// deliver passes c to the epoch's gateway; false when it no longer
// accepts.
func (ep *epoch) deliver(c net.Conn) bool {
	select {
	case ep.ln.ch <- c:
		return true
	case <-ep.ln.closed:
		return false
	case <-ep.served:
		return false
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.closed) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
