package inspect

import (
	"net/http"
	"time"

	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// record logs a decision about a request of the tunnel and hands it to the
// decision log: denials always, allowed decisions when LogAllowed. The
// request's credentials (Authorization, Proxy-Authorization) are never
// part of it.
func (t *tunnel) record(ev event, d policy.Decision) {
	id := t.req.Identity
	if d.Allowed {
		t.in.log.Debug("allowed", "org", id.Org, "user", id.User, "host", ev.host, "port", ev.port, "method", ev.method,
			"action", string(ev.action), "image", ev.image, "rule", d.Rule)
	} else {
		t.in.log.Info("denied", "org", id.Org, "user", id.User, "host", ev.host, "port", ev.port, "method", ev.method,
			"action", string(ev.action), "image", ev.image, "rule", d.Rule, "reason", d.Reason)
	}
	t.in.sink(id, ev, d)
}

// recordTunnel records a decision about the tunnel itself (its TLS), taken
// before any request.
func (in *Inspector) recordTunnel(req gateway.TunnelRequest, d policy.Decision) {
	id := req.Identity
	in.log.Info("denied", "org", id.Org, "user", id.User, "host", req.Host, "port", req.Port, "method", http.MethodConnect, "rule", d.Rule, "reason", d.Reason)
	in.sink(id, event{method: http.MethodConnect, host: req.Host, port: req.Port}, d)
}

func (in *Inspector) sink(id gateway.Identity, ev event, d policy.Decision) {
	if in.opts.Decisions == nil || (d.Allowed && !in.opts.LogAllowed) {
		return
	}
	in.opts.Decisions.Record(store.DecisionRecord{
		Time:     time.Now().UTC(),
		Org:      id.Org,
		User:     id.User,
		Host:     ev.host,
		Port:     int(ev.port),
		Method:   ev.method,
		Action:   string(ev.action),
		Image:    ev.image,
		Digest:   ev.digest,
		Category: string(d.Category),
		Rule:     d.Rule,
		Allowed:  d.Allowed,
		Reason:   d.Reason,
		Gateway:  in.opts.Name,
	})
}
