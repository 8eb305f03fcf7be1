package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/gateway"
)

type standaloneFlags struct {
	gw                  gatewayFlags
	controlPlanes       []string
	token               string
	org                 string
	cacheDir            string
	ttl                 time.Duration
	policyFile          string
	metricsListen       string
	logLevel, logFormat string
}

func newGatewayCmd() *cobra.Command {
	var f standaloneFlags
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run a standalone gateway that follows one or more control planes",
		Long: `Run a gateway (forward proxy) on its own, for fleets: it follows the policy
of every org its clients belong to from the control planes (--control-plane,
tried in turn), keeps the last snapshot of each on disk and enforces it across
restarts until --policy-ttl runs out, checks proxy credentials with the
control plane, and ships its decision log there. --token is a gateway token
(POST /api/v1/tokens {"kind":"gateway"} by a server admin).

With --policy-file it runs without a control plane, enforcing that file for
--org (anonymous clients only).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGateway(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	f.gw.register(fl)
	fl.StringSliceVar(&f.controlPlanes, "control-plane", nil, "control-plane URL(s), comma-separated; tried in turn")
	fl.StringVar(&f.token, "token", "", "gateway token (REGWARD_TOKEN)")
	fl.StringVar(&f.org, "org", "", "organization anonymous clients belong to (with --allow-anonymous or --policy-file)")
	fl.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "where the last policy snapshot of each org is kept")
	fl.DurationVar(&f.ttl, "policy-ttl", 24*time.Hour, "how long a snapshot is enforced after the control plane last confirmed it")
	fl.StringVar(&f.policyFile, "policy-file", "", "enforce this policy file instead of following a control plane")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "address for /metrics and /healthz (empty: none)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return withConfig(cmd)
}

func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "regward-gateway-cache"
	}
	return filepath.Join(dir, "regward", "gateway")
}

// noCredentials refuses every proxy credential: a gateway with a static
// policy file has no accounts to check them against.
type noCredentials struct{}

func (noCredentials) Authenticate(context.Context, string, string) (gateway.Identity, error) {
	return gateway.Identity{}, gateway.ErrUnauthenticated
}

func runGateway(ctx context.Context, f standaloneFlags) error {
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	cfg := gateway.Config{Registerer: reg, AllowAnonymous: f.gw.allowAnonymous, AnonymousOrg: f.org}
	var batcher *gateway.Batcher
	var follower *gateway.Follower
	switch {
	case f.policyFile != "":
		if len(f.controlPlanes) > 0 {
			return errors.New("--policy-file and --control-plane exclude each other")
		}
		if f.org == "" {
			return errors.New("--policy-file needs --org: the organization whose policy it is")
		}
		sp, err := loadStaticPolicy(f.policyFile, f.org)
		if err != nil {
			return err
		}
		cfg.Policies, cfg.Auth, cfg.AllowAnonymous = sp, noCredentials{}, true
		log.Info("enforcing a policy file; anonymous clients only", "file", f.policyFile, "org", f.org)
	default:
		if len(f.controlPlanes) == 0 {
			return errors.New("name the control plane(s) with --control-plane URL[,URL...] (or run offline with --policy-file)")
		}
		if f.token == "" {
			return errors.New("--token (or REGWARD_TOKEN) must be a gateway token")
		}
		if f.gw.allowAnonymous && f.org == "" {
			return errors.New("--allow-anonymous needs --org: the organization anonymous clients belong to")
		}
		follower, err = gateway.NewFollower(gateway.FollowerConfig{
			ControlPlanes: f.controlPlanes, Token: f.token, CacheDir: f.cacheDir, TTL: f.ttl, Logger: log,
		})
		if err != nil {
			return err
		}
		go func() {
			if err := follower.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("policy follower stopped", "err", err)
			}
		}()
		defer follower.Close()
		remote := gateway.RemoteConfig{ControlPlanes: f.controlPlanes, Token: f.token}
		auth, err := gateway.NewRemoteAuthenticator(remote)
		if err != nil {
			return err
		}
		writer, err := gateway.NewRemoteDecisionWriter(remote)
		if err != nil {
			return err
		}
		batcher, err = gateway.NewBatcher(gateway.BatcherConfig{Flush: writer.WriteDecisions, Registerer: reg, Logger: log})
		if err != nil {
			return err
		}
		cfg.Policies = follower
		cfg.Auth = gateway.NewCachingAuthenticator(auth, gateway.CacheConfig{})
	}

	// Inspection needs the installation's CA: the one clients trust.
	ca, err := f.gw.loadCA("")
	if err != nil {
		return err
	}
	if ca == nil {
		log.Info("no --ca-cert/--ca-key: every allowed tunnel is passed through without inspection, so image rules, pull-only registries and push limits are not enforced by this gateway")
	}
	errc := make(chan error, 2)
	gw, err := serveGateway(ctx, log, cfg, f.gw, ca, batcher, errc)
	if err != nil {
		return err
	}
	var ms *http.Server
	if f.metricsListen != "" {
		if ms, err = serveMetrics(log, f.metricsListen, reg, errc); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining tunnels")
	case err := <-errc:
		log.Error("gateway failed", "err", err)
		return err
	}
	sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer scancel()
	gw.shutdown(sctx)
	if ms != nil {
		_ = ms.Shutdown(sctx)
	}
	return nil
}

func serveMetrics(log *slog.Logger, addr string, reg *prometheus.Registry, errc chan<- error) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metrics server: %w", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return srv, nil
}
