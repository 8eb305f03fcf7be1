package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/regward/regward/internal/credential"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// Options configure a Server.
type Options struct {
	Store  store.Store
	Logger *slog.Logger
	Limits policy.Limits
	// Registry receives the control plane's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// MaxWait caps a long-poll's ?wait= (default 60 s).
	MaxWait time.Duration
	// GatewayCA returns the gateway CA certificate in PEM, or nil when TLS
	// inspection is not set up.
	GatewayCA func() []byte
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Server is the control plane. Its methods are the operations that both the
// REST API and the console perform.
type Server struct {
	store     store.Store
	log       *slog.Logger
	limits    policy.Limits
	maxWait   time.Duration
	gatewayCA func() []byte
	now       func() time.Time
	registry  *prometheus.Registry
	metrics   *metrics

	hub       hub
	tokens    tokenCache
	limiter   *loginLimiter
	dummyHash string
}

// New returns a Server over an opened store.
func New(o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("controlplane: no store")
	}
	s := &Server{
		store:     o.Store,
		log:       o.Logger,
		limits:    o.Limits,
		maxWait:   o.MaxWait,
		gatewayCA: o.GatewayCA,
		now:       o.Now,
		registry:  o.Registry,
		limiter:   newLoginLimiter(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxWait <= 0 {
		s.maxWait = 60 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	h, err := credential.HashPassword(credential.OneTimePassword())
	if err != nil {
		return nil, err
	}
	s.dummyHash = h
	return s, nil
}

// Run does the background work: following other replicas' changes and
// recording token use. It returns when ctx ends.
func (s *Server) Run(ctx context.Context) {
	go s.follow(ctx)
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.flushTokenUse(fctx)
			cancel()
			return
		case <-t.C:
			s.flushTokenUse(ctx)
		}
	}
}

// Store returns the server's store (for the console and wiring).
func (s *Server) Store() store.Store { return s.store }

// Handler serves the REST API, health checks and metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Routes(mux)
	return mux
}

// Routes registers the API on mux, so that the console can share it.
func (s *Server) Routes(mux *http.ServeMux) {
	api := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.instrument(pattern, h))
	}
	api("GET /healthz", s.handleHealthz)
	api("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))

	api("POST /api/v1/tokens", s.handleCreateToken)
	api("GET /api/v1/tokens", s.withToken(s.handleListTokens))
	api("DELETE /api/v1/tokens/{id}", s.withToken(s.handleRevokeToken))
	api("GET /api/v1/whoami", s.withToken(s.handleWhoami))
	api("POST /api/v1/orgs", s.withToken(s.handleCreateOrg))

	api("GET /api/v1/orgs/{org}/policy", s.withToken(s.handleGetPolicy))
	api("PUT /api/v1/orgs/{org}/policy", s.withToken(s.handlePutPolicy))
	api("GET /api/v1/orgs/{org}/registry-access", s.withToken(s.handleGetSection))
	api("PUT /api/v1/orgs/{org}/registry-access", s.withToken(s.handlePutSection))
	api("GET /api/v1/orgs/{org}/image-access", s.withToken(s.handleGetSection))
	api("PUT /api/v1/orgs/{org}/image-access", s.withToken(s.handlePutSection))
	api("GET /api/v1/orgs/{org}/snapshot", s.withToken(s.handleSnapshot))
	api("POST /api/v1/orgs/{org}/check", s.withToken(s.handleCheck))
	api("POST /api/v1/orgs/{org}/policy:preview", s.withToken(s.handlePreview))
	api("GET /api/v1/orgs/{org}/activity", s.withToken(s.handleActivity))
	api("GET /api/v1/orgs/{org}/members", s.withToken(s.handleListMembers))
	api("POST /api/v1/orgs/{org}/members", s.withToken(s.handleAddMember))
	api("PATCH /api/v1/orgs/{org}/members/{username}", s.withToken(s.handleSetRole))
	api("DELETE /api/v1/orgs/{org}/members/{username}", s.withToken(s.handleRemoveMember))
	api("GET /api/v1/orgs/{org}/registry.json", s.withToken(s.handleRegistryJSON))
	api("GET /api/v1/orgs/{org}/gateway-ca.pem", s.withToken(s.handleGatewayCA))
	api("GET /api/v1/catalog/{list}", s.withToken(s.handleGetCatalog))
	api("PUT /api/v1/catalog/{list}", s.withToken(s.handlePutCatalog))
	api("GET /api/v1/orgs/{org}/catalog/{list}", s.withToken(s.handleGetCatalog))
	api("PUT /api/v1/orgs/{org}/catalog/{list}", s.withToken(s.handlePutCatalog))

	api("POST /api/v1/gateway/authenticate", s.withToken(s.handleGatewayAuthenticate))
	api("POST /api/v1/gateway/decisions", s.withToken(s.handleGatewayDecisions))
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: database unreachable", "err", err)
		writeError(w, problem(http.StatusServiceUnavailable, "unavailable", "database unreachable"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// maxBody bounds request bodies; the largest legitimate one is a policy at
// a raised entry limit.
const maxBody = 8 << 20

// decodeBody decodes a JSON body strictly: unknown fields are an error that
// names the field.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRequest(fmt.Sprintf("request body: %v", err))
	}
	if dec.More() {
		return errBadRequest("request body: more than one JSON value")
	}
	return nil
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, errBadRequest("read request body: " + err.Error())
	}
	if len(b) > maxBody {
		return nil, problem(http.StatusRequestEntityTooLarge, "too-large", "request body over 8 MiB")
	}
	return b, nil
}
