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
