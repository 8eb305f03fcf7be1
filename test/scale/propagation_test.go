package scale

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

// propagationBound is how soon a Save & Apply on one replica must reach a
// gateway that follows another replica (the "within a second").
const propagationBound = time.Second

// A gateway long-polls replica b as `regward gateway` does; an owner makes
// changes on replica a. Each one reaches the gateway within a second,
// carried from a to b by PostgreSQL LISTEN/NOTIFY.
func TestPropagationAcrossReplicas(t *testing.T) {
	c := startCluster(t, 2)
	a, b := c.replicas[0], c.replicas[1]
	owner := newClient(a.url, c.adminToken)
	gw := newClient(b.url, c.gatewayToken)
	_, v0 := owner.policyOf(t)

	seen := make(chan snapshotAnswer, 64)
	pollErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(testContext(t, 5*time.Minute))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		after := v0
		for ctx.Err() == nil {
			snap, changed, err := gw.longPoll(ctx, after, 30*time.Second)
			if err != nil {
				if ctx.Err() == nil {
					pollErr <- err
				}
				return
			}
			if changed {
				after = snap.Version
				seen <- snap
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	const changes = 50
	var e2e, applyLat []time.Duration
	for i := 1; i <= changes; i++ {
		host := fmt.Sprintf("change%d.example", i)
		// Let the gateway's next long-poll settle on b: the case measured is
		// a gateway waiting when the change is made.
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		v := owner.mustApply(t, policyAllowing(host), 0)
		applied := time.Now()
		applyLat = append(applyLat, applied.Sub(start))
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case snap := <-seen:
				if snap.Version < v {
					continue // an older change, seen late
				}
				got := time.Since(start)
				if snap.Version != v || !listsHost(snap.Policy, host) {
					t.Fatalf("change %d: the gateway got version %d with %v, want version %d listing %s",
						i, snap.Version, snap.Policy.RegistryAccess.Registries, v, host)
				}
				e2e = append(e2e, got)
				if got > propagationBound {
					t.Errorf("change %d (version %d) reached the gateway on replica b %v after Save & Apply on replica a, want within %v",
						i, v, got.Round(time.Millisecond), propagationBound)
				}
				break wait
			case err := <-pollErr:
				t.Fatalf("gateway long-poll on replica b: %v", err)
			case <-deadline:
				t.Fatalf("change %d (version %d) never reached the long-poll on replica b", i, v)
			}
		}
	}
	line := fmt.Sprintf("scale: propagation of %d Save & Apply, replica a -> long-poll on replica b (PostgreSQL LISTEN/NOTIFY): p50 %s p99 %s max %s; apply latency p50 %s p99 %s",
		changes, ms(percentile(e2e, 0.50)), ms(percentile(e2e, 0.99)), ms(slices.Max(e2e)),
		ms(percentile(applyLat, 0.50)), ms(percentile(applyLat, 0.99)))
	t.Log(line)
	fmt.Println(line)
}

// percentile returns the q-quantile (nearest rank) of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
