package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/regward/regward/internal/policy"
)

// API is a client of the control plane's REST API.
type API struct {
	Server string // base URL, e.g. http://127.0.0.1:8080
	Token  string // Bearer token; empty for password calls
	HTTP   *http.Client
}

// ProblemError is an API error response (application/problem+json).
type ProblemError struct {
	Status  int                 `json:"status"`
	Title   string              `json:"title"`
	Detail  string              `json:"detail"`
	Errors  []policy.FieldError `json:"errors"`
	Version int64               `json:"version"`
}

func (e *ProblemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Title)
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	for _, fe := range e.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", fe.Field, fe.Message)
	}
	return b.String()
}

func (a *API) httpClient() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{Timeout: 90 * time.Second}
}

// Do sends a request with a JSON body (nil for none) and decodes a JSON
// answer into out (nil to discard). Error statuses become *ProblemError.
func (a *API) Do(ctx context.Context, method, path string, in, out any, hdr http.Header) (*http.Response, error) {
	if a.Server == "" {
		return nil, errors.New("no server: pass --server or set REGWARD_SERVER, or run `regward login`")
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.Server, "/")+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	resp, err := a.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		pe := &ProblemError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if json.Unmarshal(data, pe) != nil || pe.Status == 0 {
			pe.Status, pe.Detail = resp.StatusCode, strings.TrimSpace(string(data))
		}
		return resp, pe
	}
	if out != nil && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified {
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp, nil
}

// GetPolicy returns an org's policy and its version.
func (a *API) GetPolicy(ctx context.Context, org string) (policy.Policy, int64, error) {
	var p policy.Policy
	resp, err := a.Do(ctx, http.MethodGet, "/api/v1/orgs/"+url.PathEscape(org)+"/policy", nil, &p, nil)
	if err != nil {
		return p, 0, err
	}
	v, _ := strconv.ParseInt(strings.Trim(resp.Header.Get("ETag"), `"`), 10, 64)
	return p, v, nil
}

// ApplyResult is the answer to a Save & Apply.
type ApplyResult struct {
	Org     string          `json:"org"`
	Version int64           `json:"version"`
	Applied bool            `json:"applied"`
	Changes []policy.Change `json:"changes"`
	Policy  policy.Policy   `json:"policy"`
}

// PutPolicy is Save & Apply (or its dry run). expect 0 applies over
// whatever version is current.
func (a *API) PutPolicy(ctx context.Context, org string, p policy.Policy, expect int64, dryRun bool) (ApplyResult, error) {
	path := "/api/v1/orgs/" + url.PathEscape(org) + "/policy"
	if dryRun {
		path += "?dryRun=true"
	}
	var hdr http.Header
	if expect > 0 {
		hdr = http.Header{"If-Match": {`"` + strconv.FormatInt(expect, 10) + `"`}}
	}
	var res ApplyResult
	_, err := a.Do(ctx, http.MethodPut, path, p, &res, hdr)
	return res, err
}

// Token is a newly issued token.
type Token struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Org      string `json:"org"`
	Token    string `json:"token"`
}

// CreateToken exchanges a password for a token in org (kind "" or
// "gateway").
func (a *API) CreateToken(ctx context.Context, username, password, org, kind, name string) (Token, error) {
	req, _ := json.Marshal(map[string]string{"org": org, "kind": kind, "name": name})
	hdr := http.Header{"Authorization": {"Basic " + basic(username, password)}}
	var t Token
	_, err := a.Do(ctx, http.MethodPost, "/api/v1/tokens", json.RawMessage(req), &t, hdr)
	return t, err
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// Whoami describes the caller's token.
type Whoami struct {
	Username    string `json:"username"`
	Org         string `json:"org"`
	Role        string `json:"role"`
	Kind        string `json:"kind"`
	TokenID     string `json:"tokenId"`
	ServerAdmin bool   `json:"serverAdmin"`
}

// Whoami returns who the token belongs to.
func (a *API) Whoami(ctx context.Context) (Whoami, error) {
	var w Whoami
	_, err := a.Do(ctx, http.MethodGet, "/api/v1/whoami", nil, &w, nil)
	return w, err
}

// RevokeToken revokes the token with this ID (DELETE /api/v1/tokens/{id}).
func (a *API) RevokeToken(ctx context.Context, id string) error {
	_, err := a.Do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// Snapshot is what a gateway enforces for one org: its policy, the policy's
// version, and the effective namespace catalog.
type Snapshot struct {
	Org     string         `json:"org"`
	Version int64          `json:"version"`
	Policy  policy.Policy  `json:"policy"`
	Catalog policy.Catalog `json:"catalog"`
}

// GetSnapshot returns org's current snapshot. With after > 0 and wait > 0 it
// long-polls: changed is false when no version above after appeared in time.
func (a *API) GetSnapshot(ctx context.Context, org string, after int64, wait time.Duration) (snap Snapshot, changed bool, err error) {
	path := "/api/v1/orgs/" + url.PathEscape(org) + "/snapshot"
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := a.Do(ctx, http.MethodGet, path, nil, &snap, nil)
	if err != nil {
		return Snapshot{}, false, err
	}
	if resp.StatusCode == http.StatusNotModified {
		return Snapshot{}, false, nil
	}
	if snap.Org != org {
		return Snapshot{}, false, fmt.Errorf("GET %s: the server answered with the snapshot of organization %q", path, snap.Org)
	}
	return snap, true, nil
}

// CheckResult is the control plane's answer to POST /check: the decision
// and the reference it was made for.
type CheckResult struct {
	policy.Decision
	Image   string `json:"image"`
	User    string `json:"user"`
	Action  string `json:"action"`
	Version int64  `json:"version"`
}

// Check asks how org's current policy treats image for user ("" for the
// token's user) doing action ("" for pull).
func (a *API) Check(ctx context.Context, org, image, user, action string) (CheckResult, error) {
	req := map[string]string{"image": image}
	if user != "" {
		req["user"] = user
	}
	if action != "" {
		req["action"] = action
	}
	var res CheckResult
	_, err := a.Do(ctx, http.MethodPost, "/api/v1/orgs/"+url.PathEscape(org)+"/check", req, &res, nil)
	return res, err
}

// GatewayCA returns the installation's gateway CA in PEM, or nil when TLS
// inspection is not set up (the API answers 404).
func (a *API) GatewayCA(ctx context.Context, org string) ([]byte, error) {
	if a.Server == "" {
		return nil, errors.New("no server: pass --server or run `regward login`")
	}
	path := "/api/v1/orgs/" + url.PathEscape(org) + "/gateway-ca.pem"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.Server, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	resp, err := a.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read answer: %w", path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode >= 400:
		pe := &ProblemError{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if json.Unmarshal(data, pe) != nil || pe.Status == 0 {
			pe.Status, pe.Detail = resp.StatusCode, strings.TrimSpace(string(data))
		}
		return nil, pe
	}
	if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("GET %s: the answer is not a PEM certificate", path)
	}
	return data, nil
}

// Unreachable reports whether err means the server could not be reached at
// all (as opposed to an answer that refused the request).
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var pe *ProblemError
	if errors.As(err, &pe) {
		return pe.Status == http.StatusBadGateway || pe.Status == http.StatusServiceUnavailable || pe.Status == http.StatusGatewayTimeout
	}
	var ue *url.Error
	return errors.As(err, &ue)
}
