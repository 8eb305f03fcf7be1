package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/regward/regward/internal/store"
)

// RemoteConfig says how a standalone gateway reaches the control plane.
type RemoteConfig struct {
	// ControlPlanes are base URLs of control-plane replicas
	// (https://cp-1.example:8080). Requests go to the one that answered
	// last and fail over to the next on a network error or a 5xx.
	ControlPlanes []string
	Token         string       // a gateway token
	HTTPClient    *http.Client // nil: a client of its own
}

// cpClient calls the control plane's gateway endpoints with failover.
type cpClient struct {
	bases []*url.URL
	token string
	hc    *http.Client
	cur   atomic.Int32 // index of the replica to try first
}

func newCPClient(urls []string, token string, hc *http.Client) (*cpClient, error) {
	if len(urls) == 0 {
		return nil, errors.New("no control-plane URL given")
	}
	if token == "" {
		return nil, errors.New("a gateway token is required to talk to the control plane")
	}
	c := &cpClient{token: token, hc: hc}
	for _, s := range urls {
		u, err := url.Parse(strings.TrimSuffix(s, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return nil, fmt.Errorf("control-plane URL %q: want http(s)://HOST[:PORT][/PATH]", s)
		}
		c.bases = append(c.bases, u)
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32 // one long-poll per followed org
		c.hc = &http.Client{Transport: t}
	}
	return c, nil
}

// do sends a request to the replicas in turn, starting with the one that
// answered last, until one answers with a status below 500. Each attempt
// has its own deadline (attempt), so a replica that accepts connections but
// never answers (hung, or stopped with SIGSTOP) costs one attempt, not the
// caller's whole budget; a failed replica is skipped next time. The caller
// closes the returned body.
func (c *cpClient) do(ctx context.Context, method, pathAndQuery string, body []byte, attempt time.Duration) (*http.Response, error) {
	start := int(c.cur.Load())
	var errs []error
	for i := range c.bases {
		idx := (start + i) % len(c.bases)
		base := c.bases[idx]
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		actx, cancel := context.WithTimeout(ctx, attempt)
		req, err := http.NewRequestWithContext(actx, method, base.String()+pathAndQuery, rd)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("build request: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.hc.Do(req)
		if err == nil && resp.StatusCode < 500 {
			c.cur.Store(int32(idx))
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		if err == nil {
			err = fmt.Errorf("%s: %w", base.Host, problemError(resp))
			resp.Body.Close()
		}
		cancel()
		c.cur.CompareAndSwap(int32(idx), int32((idx+1)%len(c.bases)))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no control plane answered: %w", errors.Join(errs...))
}

// cancelOnClose ends an attempt's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// problemError turns an error response (application/problem+json) into an
// error carrying its detail.
func problemError(resp *http.Response) error {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &p) == nil && (p.Detail != "" || p.Title != "") {
		if p.Detail == "" {
			p.Detail = p.Title
		}
		return fmt.Errorf("control plane answered %d: %s", resp.StatusCode, p.Detail)
	}
	return fmt.Errorf("control plane answered %s", resp.Status)
}

// RemoteAuthenticator checks proxy credentials with the control plane
// (POST /api/v1/gateway/authenticate). Wrap it in a CachingAuthenticator.
type RemoteAuthenticator struct {
	cp *cpClient
}

// NewRemoteAuthenticator returns an Authenticator backed by the control plane.
func NewRemoteAuthenticator(cfg RemoteConfig) (*RemoteAuthenticator, error) {
	cp, err := newCPClient(cfg.ControlPlanes, cfg.Token, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("remote authenticator: %w", err)
	}
	return &RemoteAuthenticator{cp: cp}, nil
}

// Authenticate implements Authenticator.
func (a *RemoteAuthenticator) Authenticate(ctx context.Context, username, token string) (Identity, error) {
	body, err := json.Marshal(map[string]string{"username": username, "token": token})
	if err != nil {
		return Identity{}, fmt.Errorf("encode authentication request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, backendTimeout)
	defer cancel()
	resp, err := a.cp.do(ctx, http.MethodPost, "/api/v1/gateway/authenticate", body, attemptTimeout)
	if err != nil {
		return Identity{}, fmt.Errorf("authenticate %q: %w", username, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return Identity{}, fmt.Errorf("authenticate %q: %w", username, ErrUnauthenticated)
	default:
		return Identity{}, fmt.Errorf("authenticate %q: %w", username, problemError(resp))
	}
	var out struct {
		Username string `json:"username"`
		Org      string `json:"org"`
		Role     string `json:"role"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return Identity{}, fmt.Errorf("authenticate %q: decode answer: %w", username, err)
	}
	if out.Username != username || out.Org == "" {
		return Identity{}, fmt.Errorf("authenticate %q: the control plane answered for user %q in org %q", username, out.Username, out.Org)
	}
	return Identity{User: out.Username, Org: out.Org, Owner: out.Role == string(store.RoleOwner)}, nil
}

// maxDecisionUpload is the control plane's limit per request.
const maxDecisionUpload = 5000

// RemoteDecisionWriter posts decisions to the control plane
// (POST /api/v1/gateway/decisions); use its WriteDecisions as a Batcher's
// Flush.
type RemoteDecisionWriter struct {
	cp *cpClient
}

// NewRemoteDecisionWriter returns a writer backed by the control plane.
func NewRemoteDecisionWriter(cfg RemoteConfig) (*RemoteDecisionWriter, error) {
	cp, err := newCPClient(cfg.ControlPlanes, cfg.Token, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("remote decision writer: %w", err)
	}
	return &RemoteDecisionWriter{cp: cp}, nil
}

// WriteDecisions uploads ds, in parts the control plane accepts.
func (w *RemoteDecisionWriter) WriteDecisions(ctx context.Context, ds []store.DecisionRecord) error {
	for len(ds) > 0 {
		part := ds[:min(len(ds), maxDecisionUpload)]
		ds = ds[len(part):]
		body, err := json.Marshal(struct {
			Decisions []store.DecisionRecord `json:"decisions"`
		}{part})
		if err != nil {
			return fmt.Errorf("encode decisions: %w", err)
		}
		resp, err := w.cp.do(ctx, http.MethodPost, "/api/v1/gateway/decisions", body, attemptTimeout)
		if err != nil {
			return fmt.Errorf("upload %d decisions: %w", len(part), err)
		}
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			err = problemError(resp)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("upload %d decisions: %w", len(part), err)
		}
	}
	return nil
}

// pollTimeout is how long a long-poll may take beyond the wait it asked
// for before the gateway gives up on that replica and tries the next.
const pollTimeout = 5 * time.Second

// attemptTimeout bounds one short call to one replica, so that a hung
// replica leaves time to try another within the caller's budget.
const attemptTimeout = 4 * time.Second
