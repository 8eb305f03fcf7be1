package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regward/regward/internal/policy"
)

// api is a small client of one server with one token.
type api struct {
	base, token string
	hc          *http.Client
}

func newAPI(base, token string, conns int) *api {
	return &api{base: base, token: token, hc: &http.Client{
		Timeout:   90 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute},
	}}
}

func (a *api) do(ctx context.Context, method, path string, header http.Header, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// policyVersion reads the current policy version (its ETag).
func (a *api) policyVersion(ctx context.Context) (int64, error) {
	status, h, body, err := a.do(ctx, "GET", "/api/v1/orgs/"+org+"/policy", nil, nil)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("GET policy: %d %s", status, body)
	}
	return strconv.ParseInt(strings.Trim(h.Get("ETag"), `"`), 10, 64)
}

// apply makes policy i (Docker Hub plus one host of its own) the org's
// policy on top of version v and returns the new version.
func (a *api) apply(ctx context.Context, i int, v int64) (int64, error) {
	p := policy.Default(org)
	p.RegistryAccess.Registries = append(p.RegistryAccess.Registries, policy.Registry{Host: fmt.Sprintf("apibench-%d.example", i)})
	body, err := json.Marshal(p)
	if err != nil {
		return 0, err
	}
	h := http.Header{"Content-Type": {"application/json"}, "If-Match": {etag(v)}}
	status, _, rb, err := a.do(ctx, "PUT", "/api/v1/orgs/"+org+"/policy", h, body)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("Save & Apply: %d %s", status, rb)
	}
	var res struct {
		Version int64 `json:"version"`
		Applied bool  `json:"applied"`
	}
	if err := json.Unmarshal(rb, &res); err != nil || !res.Applied || res.Version != v+1 {
		return 0, fmt.Errorf("Save & Apply answered %s, want version %d applied", rb, v+1)
	}
	return res.Version, nil
}

func etag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// gatewayToken asks for a gateway token as the server admin.
func gatewayToken(ctx context.Context, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/tokens", strings.NewReader(`{"kind":"gateway","name":"apibench"}`))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth("admin", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tok struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &tok) != nil || tok.Token == "" {
		return "", fmt.Errorf("create gateway token: %d %s", resp.StatusCode, b)
	}
	return tok.Token, nil
}

// loadResult is the outcome of a fixed-time load.
type loadResult struct {
	requests  int64
	elapsed   time.Duration
	latencies []time.Duration // a sample, at most maxSamples
	serverCPU time.Duration   // CPU time the server spent during the measurement
	clientCPU time.Duration   // CPU time the load generator spent
}

func (r loadResult) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

const maxSamples = 1 << 20

// conditionalGET builds the raw request of a gateway that already holds
// version v: a keep-alive HTTP/1.1 GET with If-None-Match.
func conditionalGET(host, token string, v int64) []byte {
	return []byte("GET /api/v1/orgs/" + org + "/policy HTTP/1.1\r\nHost: " + host +
		"\r\nAuthorization: Bearer " + token + "\r\nIf-None-Match: " + etag(v) +
		"\r\nUser-Agent: regward-apibench\r\n\r\n")
}

// load sends req from clients keep-alive connections to addr, unmeasured
// for warmup and then measured for dur, and fails at the first answer whose
// status is not want. cpu, when not nil, reads the server's CPU time.
// It writes requests and reads answers with net/http's parser on raw
// connections, which costs the generator much less than http.Client.
func load(ctx context.Context, addr string, req []byte, want, clients int, warmup, dur time.Duration, cpu func() (time.Duration, error)) (loadResult, error) {
	const (
		warming int32 = iota
		measuring
		stopping
	)
	var phase atomic.Int32
	var firstErr error
	var errOnce sync.Once
	failed := make(chan struct{})
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; close(failed) })
		phase.Store(stopping)
	}
	counts := make([]int64, clients)
	samples := make([][]time.Duration, clients)
	perWorker := maxSamples / clients
	var wg sync.WaitGroup
	for w := range clients {
		conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			phase.Store(stopping)
			wg.Wait()
			return loadResult{}, fmt.Errorf("connect to %s: %w", addr, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			br := bufio.NewReaderSize(conn, 4096)
			for phase.Load() != stopping {
				t0 := time.Now()
				_ = conn.SetDeadline(t0.Add(10 * time.Second))
				if _, err := conn.Write(req); err != nil {
					fail(fmt.Errorf("write request: %w", err))
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					fail(fmt.Errorf("read answer: %w", err))
					return
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				if resp.StatusCode != want {
					fail(fmt.Errorf("answer %d %s, want %d", resp.StatusCode, bytes.TrimSpace(body), want))
					return
				}
				if resp.Close {
					fail(errors.New("the server closed a keep-alive connection"))
					return
				}
				if phase.Load() == measuring {
					counts[w]++
					if len(samples[w]) < perWorker {
						samples[w] = append(samples[w], time.Since(t0))
					}
				}
			}
		}()
	}

	stop := func() { phase.Store(stopping); wg.Wait() }
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-failed:
			return false
		case <-time.After(d):
			return true
		}
	}
	if !sleep(warmup) {
		stop()
		return loadResult{}, errors.Join(firstErr, ctx.Err())
	}
	var srv0 time.Duration
	if cpu != nil {
		srv0, _ = cpu()
	}
	self0 := selfCPU()
	start := time.Now()
	phase.CompareAndSwap(warming, measuring)
	ok := sleep(dur)
	phase.CompareAndSwap(measuring, stopping)
	elapsed := time.Since(start)
	self1 := selfCPU()
	var srv1 time.Duration
	if cpu != nil {
		srv1, _ = cpu()
	}
	stop()
	if !ok || firstErr != nil {
		return loadResult{}, errors.Join(firstErr, ctx.Err())
	}
	res := loadResult{elapsed: elapsed, serverCPU: srv1 - srv0, clientCPU: self1 - self0}
	for w := range clients {
		res.requests += counts[w]
		res.latencies = append(res.latencies, samples[w]...)
	}
	return res, nil
}

// applyLatency times n sequential Save & Apply.
func applyLatency(ctx context.Context, a *api, n int) ([]time.Duration, error) {
	v, err := a.policyVersion(ctx)
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		if v, err = a.apply(ctx, i, v); err != nil {
			return lat, fmt.Errorf("apply %d: %w", i+1, err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// fanout has n gateways long-polling GET .../snapshot?after=V&wait=30s,
// makes one Save & Apply, and returns how long after it was sent each
// gateway had the new version, for each of rounds changes.
func fanout(ctx context.Context, base string, owner *api, n, rounds int) ([][]time.Duration, error) {
	tok, err := gatewayToken(ctx, base)
	if err != nil {
		return nil, err
	}
	gw := newAPI(base, tok, n)
	defer gw.hc.CloseIdleConnections()
	v, err := owner.policyVersion(ctx)
	if err != nil {
		return nil, err
	}
	var all [][]time.Duration
	for round := range rounds {
		got := make([]time.Time, n)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := fmt.Sprintf("/api/v1/orgs/%s/snapshot?after=%d&wait=30s", org, v)
				status, _, body, err := gw.do(ctx, "GET", path, nil, nil)
				got[i] = time.Now()
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("long-poll answered %d %s before the change", status, bytes.TrimSpace(body))
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		if err := waitLongPolls(ctx, base, n); err != nil {
			wg.Wait()
			return all, err
		}
		t0 := time.Now()
		if v, err = owner.apply(ctx, 100_000+round, v); err != nil {
			wg.Wait()
			return all, err
		}
		wg.Wait()
		select {
		case err := <-errs:
			return all, err
		default:
		}
		ds := make([]time.Duration, n)
		for i, t := range got {
			ds[i] = t.Sub(t0)
		}
		all = append(all, ds)
	}
	return all, nil
}

// waitLongPolls waits until the server's regward_policy_long_polls gauge
// shows n waiting long-polls.
func waitLongPolls(ctx context.Context, base string, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	last := -1.0
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "regward_policy_long_polls "); ok {
				last, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			}
		}
		if int(last) == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%v long-polls waiting after 30 s, want %d", last, n)
}
