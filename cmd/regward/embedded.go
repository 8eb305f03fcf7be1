package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/store"
)

type embeddedGateway struct{ srv *http.Server }

func startEmbeddedGateway(ctx context.Context, log *slog.Logger, cp *controlplane.Server, st store.Store, reg *prometheus.Registry, f gatewayFlags, errc chan<- error) (*embeddedGateway, error) {
	ln, err := f.listener(ctx)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gateway not enabled", http.StatusServiceUnavailable)
	})}
	go func() { _ = srv.Serve(ln) }()
	log.Info("gateway listening", "addr", ln.Addr().String())
	return &embeddedGateway{srv: srv}, nil
}

func (g *embeddedGateway) shutdown(ctx context.Context) { _ = g.srv.Shutdown(ctx) }

func newGatewayCmd() *cobra.Command {
	return &cobra.Command{Use: "gateway", Short: "Run a standalone gateway", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return nil }}
}
