package gateway

import (
	"strings"
	"testing"

	"github.com/regward/regward/internal/policy"
)

// A host whose rules only inspection can enforce (here a pull-only entry)
// is refused by a gateway that cannot inspect, rather than tunnelled
// unchecked.
func TestNoInspectionFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	p := policy.Default(testOrg)
	p.RegistryAccess.Registries = []policy.Registry{{Host: "allowed.test"}, {Host: "denied.test", Access: policy.AccessPull}}
	c, err := policy.Compile(p, policy.Catalog{})
	if err != nil {
		t.Fatal(err)
	}
	e.policies.set(testOrg, c)

	_, err = e.get(e.client("alice", aliceToken), e.tlsURL("denied.test"))
	if err == nil || !strings.Contains(err.Error(), "cannot check without TLS inspection") {
		t.Fatalf("pull-only host without inspection: %v", err)
	}
	ds := e.decisions("denied.test", false)
	if len(ds) == 0 || ds[len(ds)-1].Rule != "inspection" {
		t.Fatalf("the refusal was not recorded with rule inspection: %+v", ds)
	}
	e.mustWork()
}
