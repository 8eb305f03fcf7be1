package inspect

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regward/regward/internal/gateway"
)

func TestPushRules(t *testing.T) {
	e := newEnv(t)
	seedHub(t, e)
	ctx := ctxFor(t, 2*time.Minute)

	t.Run("pull-only registry", func(t *testing.T) {
		err := push(ctx, "pull.test/newapp:v1", e.alice())
		if got, want := denial(t, err), "registry pull.test is pull-only for organization acme; pushing is not allowed"; got != want {
			t.Fatalf("push denied with %q, want %q", got, want)
		}
		// Owners are bound by registry rules too.
		if err := push(ctx, "pull.test/newapp:v1", e.olivia()); err == nil {
			t.Fatal("an owner pushed to a pull-only registry")
		}
		direct, _ := name.ParseReference(e.reg.Ref("pull.test", "newapp:v1"))
		if _, err := remote.Head(direct, remote.WithTransport(e.reg.Transport())); err == nil {
			t.Fatal("the denied push reached the registry")
		}
		if err := pull(ctx, "pull.test/app:v1", e.alice()); err != nil {
			t.Fatalf("pull from the pull-only registry: %v", err)
		}
		ds := e.decisions.find("pull.test", "pull.test/newapp", false)
		if len(ds) == 0 || ds[0].Action != "push" || ds[0].Rule != "registryAccess.registries[1].access" {
			t.Errorf("denied push recorded as %+v", ds)
		}
	})

	t.Run("push only to org namespaces", func(t *testing.T) {
		err := push(ctx, "someone/x:v1", e.alice())
		want := "pushing to docker.io/someone/x is not allowed: organization acme allows pushes on Docker Hub only to its own namespaces (acme)"
		if got := denial(t, err); got != want {
			t.Fatalf("push to someone/x denied with %q, want %q", got, want)
		}
		if err := push(ctx, "acme/x:v1", e.alice()); err != nil {
			t.Fatalf("push to acme/x: %v", err)
		}
		if err := pull(ctx, "acme/x:v1", e.alice()); err != nil {
			t.Fatalf("pull back acme/x: %v", err)
		}
		if err := push(ctx, "someone/x:v1", e.olivia()); err != nil {
			t.Fatalf("an owner's push to someone/x: %v", err)
		}
	})
}

// TestMountsAreDecidedAsPulls checks that a cross-repository mount from
// an image the client may not pull reaches the registry as a plain upload:
// mounting would copy the blob into a repository the client may read.
func TestMountsAreDecidedAsPulls(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			mu.Lock()
			queries = append(queries, r.URL.RawQuery)
			mu.Unlock()
			w.Header().Set("Location", r.URL.Path+"some-upload-id")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	up := startUpstream(t, h, []string{"h2", "http/1.1"}, "index.docker.io")
	e := newEnv(t, func(e *env, o *Options, g *gateway.Config) {
		g.Resolve["index.docker.io"] = up.addr()
		o.UpstreamRoots.AddCert(up.ca.Cert)
	})
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, user, token, query, want string
	}{
		{"from a community image", "alice", aliceToken, "mount=" + dg + "&from=someone/tool&x=1", "x=1"},
		{"from an official image", "alice", aliceToken, "mount=" + dg + "&from=library/alpine", "mount=" + dg + "&from=library/alpine"},
		{"from a community image, owner", "olivia", oliviaToken, "mount=" + dg + "&from=someone/tool", "mount=" + dg + "&from=someone/tool"},
		{"without a source", "alice", aliceToken, "mount=" + dg, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &http.Client{Transport: e.clientTransport(tc.user, tc.token, true)}
			resp, err := c.Post("https://index.docker.io/v2/acme/app/blobs/uploads/?"+tc.query, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("answered %s", resp.Status)
			}
			mu.Lock()
			got := queries[len(queries)-1]
			mu.Unlock()
			if got != tc.want {
				t.Fatalf("the registry received the query %q, want %q", got, tc.want)
			}
		})
	}
	ds := e.decisions.find("index.docker.io", "docker.io/someone/tool", false)
	if len(ds) != 1 || ds[0].Digest != dg || ds[0].Action != "pull" || ds[0].User != "alice" ||
		!strings.HasPrefix(ds[0].Reason, "cross-repository mount turned into an upload: image docker.io/someone/tool is a community image") {
		t.Errorf("the refused mount was recorded as %+v", ds)
	}
}
