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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/console"
	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
	"github.com/regward/regward/internal/store/postgres"
	"github.com/regward/regward/internal/store/sqlite"
)

type serveFlags struct {
	data, org, listen, database string
	tlsCert, tlsKey             string
	logLevel, logFormat         string
	maxRegistries               int
	retention                   time.Duration
	gw                          gatewayFlags
	noGateway                   bool
	sessionTTL                  time.Duration
	consoleGateway              string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane (API and console) with an embedded gateway",
		Long: `Run the control plane: the REST API and admin console on --listen, and the
gateway (forward proxy) on --proxy-listen. On an empty --data directory it
creates the organization --org, its owner "admin" with a one-time password
(printed once, or taken from REGWARD_ADMIN_PASSWORD), and an owner access
token in DATA/admin-token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), cmd.OutOrStdout(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "regward-data", "data directory (SQLite database, admin token, gateway CA)")
	fl.StringVar(&f.org, "org", "default", "organization created on first run")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address of the API and console")
	fl.StringVar(&f.database, "database", "", "postgres://... for PostgreSQL; empty for SQLite in --data")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve the API and console over HTTPS with this certificate (PEM)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "private key for --tls-cert (PEM)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fl.IntVar(&f.maxRegistries, "max-registries", policy.DefaultMaxRegistries, "most registry entries an org's policy may hold")
	fl.DurationVar(&f.retention, "decision-log-retention", 30*24*time.Hour, "how long gateway decisions are kept (e.g. 720h); 0 keeps them forever")
	fl.BoolVar(&f.noGateway, "no-gateway", false, "do not run the embedded gateway (control-plane replicas behind separate gateways)")
	fl.DurationVar(&f.sessionTTL, "session-ttl", console.DefaultSessionTTL, "how long a console sign-in lasts")
	fl.StringVar(&f.consoleGateway, "public-gateway", "", "gateway address clients use (host:port), shown on the console's Setup page")
	f.gw.register(fl)
	return withConfig(cmd)
}

func openStore(ctx context.Context, database, data string) (store.Store, string, error) {
	if strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://") {
		st, err := postgres.Open(ctx, database)
		if err != nil {
			return nil, "", fmt.Errorf("open PostgreSQL: %w", err)
		}
		return st, "postgres", nil
	}
	if database != "" {
		return nil, "", fmt.Errorf("--database %q: use postgres://... or leave it empty for SQLite", database)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, "", fmt.Errorf("create data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(data, "regward.db"))
	if err != nil {
		return nil, "", fmt.Errorf("open SQLite: %w", err)
	}
	return st, "sqlite", nil
}

func runServe(ctx context.Context, out io.Writer, f serveFlags) error {
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	st, kind, err := openStore(ctx, f.database, f.data)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ca, err := f.gw.loadCA(f.data)
	if err != nil {
		return err
	}
	if kind == "postgres" && f.gw.caCert == "" {
		log.Warn("each replica makes its own gateway CA in --data: give every replica and gateway the same --ca-cert/--ca-key", "ca", filepath.Join(f.data, "gateway-ca.pem"))
	}
	cp, err := controlplane.New(controlplane.Options{
		Store: st, Logger: log, Registry: reg, Limits: policy.Limits{MaxRegistries: f.maxRegistries},
		GatewayCA: ca.CertPEM,
	})
	if err != nil {
		return err
	}
	if err := firstRun(ctx, out, st, cp, f); err != nil {
		return err
	}

	apiLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", f.listen, err)
	}
	warnIfExposed(log, "API and console", apiLn.Addr(), f.tlsCert != "", "--tls-cert/--tls-key")
	mux := http.NewServeMux()
	cp.Routes(mux)
	con, err := console.New(console.Options{
		Server: cp, Logger: log, Secure: f.tlsCert != "", SessionTTL: f.sessionTTL, Gateway: f.consoleGateway,
	})
	if err != nil {
		return err
	}
	con.Routes(mux)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second, // above the longest long-poll
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { cp.Run(ctx); close(done) }()
	if f.retention > 0 {
		go pruneDecisions(ctx, log, st, f.retention)
	}

	errc := make(chan error, 2)
	go func() {
		var err error
		if f.tlsCert != "" {
			err = srv.ServeTLS(apiLn, f.tlsCert, f.tlsKey)
		} else {
			err = srv.Serve(apiLn)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("API server: %w", err)
		}
	}()
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	log.Info("control plane listening", "addr", apiLn.Addr().String(), "url", scheme+"://"+apiLn.Addr().String(), "store", kind)

	var gw *runningGateway
	if !f.noGateway {
		gw, err = startEmbeddedGateway(ctx, log, cp, f.org, ca, reg, f.gw, errc)
		if err != nil {
			return err
		}
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		log.Error("server failed", "err", err)
		cancel()
		defer func() { <-done }()
		return err
	}
	sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer scancel()
	if gw != nil {
		gw.shutdown(sctx)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("API shutdown", "err", err)
	}
	cancel()
	<-done
	return nil
}

// firstRun bootstraps an empty store and hands the owner their secrets once.
func firstRun(ctx context.Context, out io.Writer, st store.Store, cp *controlplane.Server, f serveFlags) error {
	pw := os.Getenv("REGWARD_ADMIN_PASSWORD")
	fr, err := controlplane.Bootstrap(ctx, st, cp, f.org, pw)
	if err != nil {
		return fmt.Errorf("first run: %w", err)
	}
	if !fr.Created {
		return nil
	}
	tokenFile := filepath.Join(f.data, "admin-token")
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(tokenFile, []byte(fr.Token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tokenFile, err)
	}
	// Printed to the terminal once, never logged.
	fmt.Fprintf(out, "\nregward first run: created organization %q with owner %q.\n", fr.Org, controlplane.AdminUser)
	if fr.Password != "" {
		fmt.Fprintf(out, "  One-time password for %s: %s\n  (shown once; change it after signing in)\n", controlplane.AdminUser, fr.Password)
	} else {
		fmt.Fprintf(out, "  Password for %s: taken from REGWARD_ADMIN_PASSWORD\n", controlplane.AdminUser)
	}
	fmt.Fprintf(out, "  Owner access token written to %s (mode 0600)\n\n", tokenFile)
	return nil
}

func warnIfExposed(log *slog.Logger, what string, addr net.Addr, tls bool, flags string) {
	ta, ok := addr.(*net.TCPAddr)
	if ok && ta.IP.IsLoopback() || tls {
		return
	}
	log.Warn(what+" listens beyond loopback without TLS: tokens would cross the network in clear", "addr", addr.String(), "fix", flags)
}

func pruneDecisions(ctx context.Context, log *slog.Logger, st store.Store, keep time.Duration) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := st.PruneDecisions(ctx, time.Now().Add(-keep))
		if err != nil && ctx.Err() == nil {
			log.Warn("prune decision log", "err", err)
		} else if n > 0 {
			log.Info("pruned decision log", "deleted", n, "older_than", keep.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
