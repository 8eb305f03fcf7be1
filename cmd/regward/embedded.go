package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/gwca"
	"github.com/regward/regward/internal/inspect"
	"github.com/regward/regward/internal/store"
)

// cpAuth checks proxy credentials against the control plane in the same
// process.
type cpAuth struct{ cp *controlplane.Server }

func (a cpAuth) Authenticate(ctx context.Context, username, token string) (gateway.Identity, error) {
	p, err := a.cp.AuthenticateToken(ctx, token)
	if controlplane.IsBadToken(err) {
		return gateway.Identity{}, gateway.ErrUnauthenticated
	}
	if err != nil {
		return gateway.Identity{}, err
	}
	if p.Username != username || p.Kind != store.TokenPersonal {
		return gateway.Identity{}, gateway.ErrUnauthenticated
	}
	return gateway.Identity{User: p.Username, Org: p.Org, Owner: p.Role == store.RoleOwner}, nil
}

// runningGateway is a gateway serving a listener, with what must be closed
// after it.
type runningGateway struct {
	gw      *gateway.Gateway
	in      *inspect.Inspector // nil without inspection
	batcher *gateway.Batcher
	log     *slog.Logger
}

func (r *runningGateway) shutdown(ctx context.Context) {
	if r.in != nil {
		r.in.Drain() // idle inspected keep-alives would hold Shutdown to its deadline
	}
	if err := r.gw.Shutdown(ctx); err != nil {
		r.log.Warn("gateway shutdown", "err", err)
	}
	if r.batcher != nil {
		if err := r.batcher.Close(ctx); err != nil {
			r.log.Warn("flush decision log", "err", err)
		}
	}
}

// serveGateway starts a gateway on the listener of f; errors of Serve go to
// errc. With a CA, hosts whose rules need it are inspected.
func serveGateway(ctx context.Context, log *slog.Logger, cfg gateway.Config, f gatewayFlags, ca *gwca.CA, batcher *gateway.Batcher, errc chan<- error) (*runningGateway, error) {
	resolve, err := f.resolveMap()
	if err != nil {
		return nil, err
	}
	var in *inspect.Inspector
	if ca != nil {
		roots, err := f.upstreamRoots()
		if err != nil {
			return nil, err
		}
		var sink gateway.DecisionSink
		if batcher != nil {
			sink = batcher
		}
		in, err = inspect.New(inspect.Options{
			CA: ca, UpstreamRoots: roots, Policies: cfg.Policies, Decisions: sink, LogAllowed: f.logAllowed,
			Logger: log, Registerer: cfg.Registerer, Name: f.name,
		})
		if err != nil {
			return nil, err
		}
		cfg.Interceptor = in
	}
	cfg.Resolve = resolve
	cfg.LogAllowed = f.logAllowed
	cfg.MaxConns = f.maxConns
	cfg.Name = f.name
	cfg.Logger = log
	if batcher != nil {
		cfg.Decisions = batcher
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := f.listener(ctx)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := gw.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	log.Info("gateway listening", "addr", ln.Addr().String(), "scheme", scheme)
	return &runningGateway{gw: gw, in: in, batcher: batcher, log: log}, nil
}

func startEmbeddedGateway(ctx context.Context, log *slog.Logger, cp *controlplane.Server, org string, ca *gwca.CA, reg *prometheus.Registry, f gatewayFlags, errc chan<- error) (*runningGateway, error) {
	batcher, err := gateway.NewBatcher(gateway.BatcherConfig{Flush: cp.RecordDecisions, Registerer: reg, Logger: log})
	if err != nil {
		return nil, err
	}
	cfg := gateway.Config{
		Auth:           gateway.NewCachingAuthenticator(cpAuth{cp}, gateway.CacheConfig{}),
		Policies:       cp,
		AllowAnonymous: f.allowAnonymous,
		AnonymousOrg:   org,
		Registerer:     reg,
	}
	return serveGateway(ctx, log, cfg, f, ca, batcher, errc)
}
