package inspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/regward/regward/internal/ociref"
	"github.com/regward/regward/internal/policy"
)

// policyTimeout bounds looking up the org's current policy; the gateway
// found it moments ago for the CONNECT, so it is normally in memory.
const policyTimeout = 15 * time.Second

// event is what a decision record says about the request it decided.
type event struct {
	method string
	action policy.Action
	host   string
	port   uint16
	image  string // docker.io/NAME or HOST/NAME; empty for host-level requests
	digest string
}

// ServeHTTP decides one request of the tunnel and forwards it if allowed.
func (t *tunnel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rq, bad := classify(r.Method, r.URL, r.Host, t.req.Host, t.req.Port)
	if bad != nil {
		t.in.m.requests.WithLabelValues("invalid").Inc()
		t.in.log.Info("refused malformed request in an inspected tunnel", "org", t.req.Identity.Org, "user", t.req.Identity.User,
			"host", t.req.Host, "method", clip(r.Method, 32), "status", bad.status, "reason", bad.message)
		writeError(w, bad.status, bad.code, bad.message)
		return
	}
	ev := event{method: r.Method, action: rq.action, host: t.req.Host, port: t.req.Port, digest: routeDigest(rq.route)}
	c, err := t.currentPolicy(r.Context())
	if err != nil {
		ev.image = t.imageName(rq.route.Name, "")
		t.deny(w, r, rq, ev, policy.Decision{Host: t.req.Host, Rule: rulePolicy, Reason: err.Error()})
		return
	}
	rawQuery := r.URL.RawQuery
	if rq.hasMount && !t.mountAllowed(c, rq, r.Method) {
		// The registry would copy a blob the client may not read into a
		// repository it may: start a plain upload instead, for which the
		// client must send the bytes it already has.
		rawQuery = stripMount(rawQuery)
	}
	d := c.Decide(policy.Request{Host: t.req.Host, Port: t.req.Port, Repository: rq.route.Name, Action: rq.action, Owner: t.req.Identity.Owner})
	ev.image = t.imageName(rq.route.Name, d.Repository)
	if !d.Allowed {
		t.deny(w, r, rq, ev, d)
		return
	}
	t.record(ev, d)
	t.forward(w, r, rawQuery, ev, c)
}

// currentPolicy returns the org's policy as it is now: a tunnel outlives
// policy changes, which must apply to its next request.
func (t *tunnel) currentPolicy(ctx context.Context) (*policy.Compiled, error) {
	ctx, cancel := context.WithTimeout(ctx, policyTimeout)
	defer cancel()
	org := t.req.Identity.Org
	c, _, err := t.in.opts.Policies.Policy(ctx, org)
	if err != nil {
		reason := err.Error()
		if !strings.HasPrefix(reason, "policy for organization ") {
			reason = "policy for organization " + org + " is unknown: " + reason
		}
		return nil, errors.New(reason)
	}
	if c == nil {
		return nil, fmt.Errorf("policy for organization %s is unknown", org)
	}
	return c, nil
}

// mountAllowed reports whether a cross-repository mount may go to the
// registry as it is. Mounting reads the source repository, so it is
// decided, and recorded when denied, as a pull of it; a mount that leaves
// the source to the registry cannot be judged, so on Docker Hub with image
// rules on it is refused.
func (t *tunnel) mountAllowed(c *policy.Compiled, rq request, method string) bool {
	if rq.mount.From == "" {
		return !policy.IsDockerHub(t.req.Host) || !c.Policy().ImageAccess.Enabled
	}
	d := c.Decide(policy.Request{Host: t.req.Host, Port: t.req.Port, Repository: rq.mount.From, Action: policy.ActionPull, Owner: t.req.Identity.Owner})
	if d.Allowed {
		return true
	}
	d.Reason = "cross-repository mount turned into an upload: " + d.Reason
	t.record(event{method: method, action: policy.ActionPull, host: t.req.Host, port: t.req.Port,
		image: t.imageName(rq.mount.From, d.Repository), digest: rq.mount.Digest}, d)
	return false
}

// deny answers a denied request with the registry's error format, which
// docker prints as "denied: REASON", and records it.
//
// A HEAD has no body to carry the reason, and pushers ask HEAD of each blob
// before uploading it: a denied HEAD of a blob answers "unknown blob", so
// that the client goes on to the upload, whose denial it prints. Nothing
// of the registry is revealed either way.
func (t *tunnel) deny(w http.ResponseWriter, r *http.Request, rq request, ev event, d policy.Decision) {
	t.in.m.requests.WithLabelValues("denied").Inc()
	t.record(ev, d)
	if r.Method == http.MethodHead && rq.route.Kind == ociref.KindBlob {
		writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", d.Reason)
		return
	}
	if r.Method == http.MethodHead && r.ProtoMajor == 1 && denyInStatusLine(w, d.Reason, t.ln.connOver) {
		return
	}
	writeError(w, http.StatusForbidden, "DENIED", d.Reason)
}

// forward sends an allowed request to the registry and streams its answer
// back, checking where a redirect would send the client.
func (t *tunnel) forward(w http.ResponseWriter, r *http.Request, rawQuery string, ev event, c *policy.Compiled) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	rc := http.NewResponseController(w)
	wd := startWatchdog(t.in.opts.IdleTimeout, func() {
		// No byte moved either way for the idle timeout: end the upstream
		// request and unblock whatever waits on the client.
		cancel()
		now := time.Now()
		_ = rc.SetReadDeadline(now)
		_ = rc.SetWriteDeadline(now)
	})
	defer wd.stop()

	resp, err := t.tr.RoundTrip(t.upstreamRequest(ctx, r, rawQuery, wd))
	if err != nil {
		t.upstreamFailed(w, r, err)
		return
	}
	defer resp.Body.Close()
	wd.touch()
	if t.redirectDenied(w, resp, ev, c) {
		return
	}
	t.in.m.requests.WithLabelValues("allowed").Inc()
	removeHopHeaders(resp.Header)
	maps.Copy(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	if err := copyBody(w, rc, resp.Body, wd); err != nil {
		t.transferFailed(r, ev, err, wd.fired())
		// Returning with the body short makes net/http end the stream or
		// connection, so the client sees a broken transfer, not a short one.
		panic(http.ErrAbortHandler)
	}
}

// upstreamRequest is the client's request as it goes to the registry.
func (t *tunnel) upstreamRequest(ctx context.Context, r *http.Request, rawQuery string, wd *watchdog) *http.Request {
	out := r.Clone(ctx)
	out.RequestURI = ""
	// The path is sent exactly as it was decided: the same Path and
	// RawPath give the same escaped path ParsePath read.
	out.URL = &url.URL{Scheme: "https", Host: t.authority, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: rawQuery}
	out.Host = ""
	out.Close = false
	out.TransferEncoding = nil
	out.Trailer = nil
	removeHopHeaders(out.Header)
	if r.ContentLength == 0 {
		out.Body = nil
	} else {
		out.Body = &progressBody{ReadCloser: r.Body, wd: wd}
	}
	return out
}

// transferFailed logs and counts a body copy that failed: the registry
// stalled (idle is true) or broke off, or the client went away.
func (t *tunnel) transferFailed(r *http.Request, ev event, err error, idle bool) {
	id := t.req.Identity
	clientSide := errors.Is(err, errClientWrite)
	switch {
	case idle && !clientSide:
		t.in.m.upstreamErrors.WithLabelValues("body").Inc()
		t.in.log.Warn("registry transfer stalled; ended it", "org", id.Org, "user", id.User, "host", t.req.Host, "image", ev.image, "idle", t.in.opts.IdleTimeout)
	case clientSide || r.Context().Err() != nil:
		t.in.log.Debug("client left during a transfer", "org", id.Org, "user", id.User, "host", t.req.Host, "image", ev.image, "err", err)
	default:
		t.in.m.upstreamErrors.WithLabelValues("body").Inc()
		t.in.log.Warn("registry transfer broke off", "org", id.Org, "user", id.User, "host", t.req.Host, "image", ev.image, "err", err)
	}
}

// redirectDenied checks a redirect to another host with the registry rules
// and, if they deny it, answers the denial in place of the redirect.
func (t *tunnel) redirectDenied(w http.ResponseWriter, resp *http.Response, ev event, c *policy.Compiled) bool {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return false
	}
	host, port, ok := redirectTarget(t.req.Host, t.req.Port, resp.Header.Get("Location"))
	if !ok {
		return false
	}
	d := c.Decide(policy.Request{Host: host, Port: port, Owner: t.req.Identity.Owner})
	rev := ev
	rev.host, rev.port = host, port
	if d.Allowed {
		t.record(rev, d)
		return false
	}
	d.Reason = redirectReason(policy.JoinHostPort(host, port), t.req.Identity.Org, ev.image, t.shown)
	// A redirect's body is a line of HTML at most; reading it lets the
	// upstream connection be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	t.in.m.requests.WithLabelValues("denied").Inc()
	t.record(rev, d)
	writeError(w, http.StatusForbidden, "DENIED", d.Reason)
	return true
}

// upstreamError marks where the way to a registry failed.
type upstreamError struct {
	stage string // connect or tls
	err   error
}

func (e *upstreamError) Error() string { return e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// upstreamFailed answers a request the registry could not be asked, in the
// registry error format so that clients show the cause.
func (t *tunnel) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client left; nobody to answer
	}
	stage, status, msg := "response", http.StatusBadGateway, "the registry "+t.shown+" did not answer the gateway: "+err.Error()
	var ue *upstreamError
	if errors.As(err, &ue) {
		stage = ue.stage
	}
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	switch {
	case errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne):
		stage = "tls"
		msg = "the gateway cannot verify the certificate of " + t.shown + ": " + err.Error() +
			"; if the registry uses a private CA, add it to the gateway's upstream CAs"
	case stage == "connect":
		msg = "the gateway cannot connect to " + t.shown + ": " + err.Error()
	case stage == "tls":
		msg = "TLS with " + t.shown + " failed: " + err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		status = http.StatusGatewayTimeout
	}
	t.in.m.upstreamErrors.WithLabelValues(stage).Inc()
	t.in.m.requests.WithLabelValues("error").Inc()
	t.in.log.Warn("registry request failed", "org", t.req.Identity.Org, "user", t.req.Identity.User, "host", t.req.Host, "stage", stage, "err", err)
	writeError(w, status, "UNAVAILABLE", msg)
}

// imageName names a repository the way records and messages do:
// docker.io/NAMESPACE/NAME on Docker Hub (decided is the policy's
// canonical name when it has one), HOST[:PORT]/NAME elsewhere.
func (t *tunnel) imageName(repo, decided string) string {
	if repo == "" {
		return ""
	}
	if policy.IsDockerHub(t.req.Host) {
		if decided == "" {
			decided = repo
			if !strings.Contains(repo, "/") {
				decided = "library/" + repo
			}
		}
		return "docker.io/" + decided
	}
	return t.shown + "/" + repo
}

// routeDigest is the digest a request names, if any: a manifest by digest
// (tags cannot contain ':'), a blob or the subject of referrers.
func routeDigest(r ociref.Route) string {
	switch r.Kind {
	case ociref.KindManifest:
		if strings.Contains(r.Reference, ":") {
			return r.Reference
		}
	case ociref.KindBlob, ociref.KindReferrers:
		return r.Digest
	}
	return ""
}
