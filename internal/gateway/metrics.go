package gateway

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's regward_gateway_* series.
type metrics struct {
	requests     *prometheus.CounterVec // kind: connect, http, invalid
	decisions    *prometheus.CounterVec // result: allowed, denied
	authFailures prometheus.Counter
	tunnelBytes  *prometheus.CounterVec // direction: client_to_upstream, upstream_to_client
	bytesUp      prometheus.Counter
	bytesDown    prometheus.Counter
	tunnels      prometheus.Gauge
	activeConns  prometheus.Gauge
	rejected     prometheus.Counter
	version      *prometheus.GaugeVec // org
	latency      prometheus.Histogram

	// The series every request touches, looked up once rather than by
	// label on each request.
	connectRequests, httpRequests, invalidRequests prometheus.Counter
	allowed, denied                                prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regward_gateway_requests_total",
			Help: "Proxy requests by kind: connect (tunnels), http (plain HTTP) and invalid (refused before a decision).",
		}, []string{"kind"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regward_gateway_decisions_total",
			Help: "Policy decisions by result (allowed or denied).",
		}, []string{"result"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regward_gateway_auth_failures_total",
			Help: "Requests answered 407 because their credential was missing or wrong.",
		}),
		tunnelBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regward_gateway_tunnel_bytes_total",
			Help: "Bytes carried by tunnels, by direction; counted as each copy pauses (at least every quarter idle timeout), not per packet.",
		}, []string{"direction"}),
		tunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "regward_gateway_active_tunnels",
			Help: "Open CONNECT tunnels.",
		}),
		activeConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "regward_gateway_active_connections",
			Help: "Client connections held, tunnels included.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regward_gateway_rejected_connections_total",
			Help: "Client connections refused with 503 because the gateway was at its connection limit.",
		}),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regward_gateway_policy_version",
			Help: "Version of the policy last enforced, per org.",
		}, []string{"org"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "regward_gateway_decision_duration_seconds",
			Help:    "Time from a complete request head to its decision: authentication, policy look-up and matching.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5},
		}),
	}
	m.bytesUp = m.tunnelBytes.WithLabelValues("client_to_upstream")
	m.bytesDown = m.tunnelBytes.WithLabelValues("upstream_to_client")
	m.connectRequests = m.requests.WithLabelValues("connect")
	m.httpRequests = m.requests.WithLabelValues("http")
	m.invalidRequests = m.requests.WithLabelValues("invalid")
	m.allowed = m.decisions.WithLabelValues("allowed")
	m.denied = m.decisions.WithLabelValues("denied")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.decisions, m.authFailures, m.tunnelBytes, m.tunnels, m.activeConns, m.rejected, m.version, m.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("metrics of another gateway are already registered here; give each gateway its own Registerer")
			}
			return nil, err
		}
	}
	return m, nil
}
