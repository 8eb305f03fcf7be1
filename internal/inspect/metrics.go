package inspect

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the inspector's regward_gateway_inspect* series; they sit
// next to the gateway's own in the same registry.
type metrics struct {
	requests       *prometheus.CounterVec // result: allowed, denied, invalid, error
	upstreamErrors *prometheus.CounterVec // stage: connect, tls, response, body
	handshakes     *prometheus.CounterVec // result: ok, refused, failed
	tunnels        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regward_gateway_inspected_requests_total",
			Help: "Requests seen inside inspected tunnels, by result: allowed, denied (policy or redirect), invalid (refused as malformed) and error (the upstream failed).",
		}, []string{"result"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regward_gateway_inspect_upstream_errors_total",
			Help: "Failures talking to registries from inspected tunnels, by stage: connect (resolve or dial), tls (certificate or handshake), response (no usable response) and body (a transfer broke off).",
		}, []string{"stage"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regward_gateway_inspect_handshakes_total",
			Help: "TLS handshakes with clients of inspected tunnels, by result: ok, refused (server name other than the CONNECT host, or not TLS) and failed.",
		}, []string{"result"}),
		tunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "regward_gateway_inspected_tunnels",
			Help: "Inspected tunnels open.",
		}),
	}
	for _, r := range []string{"allowed", "denied", "invalid", "error"} {
		m.requests.WithLabelValues(r)
	}
	for _, s := range []string{"connect", "tls", "response", "body"} {
		m.upstreamErrors.WithLabelValues(s)
	}
	for _, r := range []string{"ok", "refused", "failed"} {
		m.handshakes.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.upstreamErrors, m.handshakes, m.tunnels} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("metrics of another inspector are already registered here; give each its own Registerer")
			}
			return nil, err
		}
	}
	return m, nil
}
