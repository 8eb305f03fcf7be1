package e2e

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrname "github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regward/regward/internal/clienttest"
	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/gwca"
	"github.com/regward/regward/internal/inspect"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/registrytest"
)

// The inspection tests keep their own small helpers, so that they do not
// depend on the shapes of the other end-to-end files.

const inspOrg = "acme"

// Denials as clients must print them (DESIGN.md "Enforcement": the policy
// core's reasons, in the registry's error format).
const (
	inspCommunityDenied = "denied: image docker.io/someone/tool is a community image; organization acme allows only official images and its own namespaces (acme)"
	inspPullOnlyDenied  = "denied: registry pull.test is pull-only for organization acme; pushing is not allowed"
	inspNamespaceDenied = "denied: pushing to docker.io/someone/x is not allowed: organization acme allows pushes on Docker Hub only to its own namespaces (acme)"
)

// inspCatalog has verifiedco on the verified publisher list.
var inspCatalog = policy.Catalog{VerifiedPublishers: []string{"verifiedco"}}

// inspPolicy is acme's policy: Docker Hub with official images allowed,
// verified and community images restricted, its own namespace acme, pushes
// only there, and pull.test as a pull-only registry.
func inspPolicy(allowlist ...string) policy.Policy {
	p := policy.Default(inspOrg)
	p.RegistryAccess.Registries = []policy.Registry{
		{Host: policy.DockerHubGroup},
		{Host: "pull.test", Access: policy.AccessPull},
	}
	p.ImageAccess = policy.ImageAccess{
		Enabled:                 true,
		OfficialImages:          policy.Allowed,
		VerifiedPublisherImages: policy.Restricted,
		SponsoredOSSImages:      policy.Restricted,
		CommunityImages:         policy.Restricted,
		OrgNamespaces:           []string{"acme"},
		RepositoryAllowlist:     append([]string{}, allowlist...),
	}
	p.NamespaceAccess.PushOnlyToOrgNamespaces = true
	return p
}

type inspPolicies struct {
	mu sync.Mutex
	c  *policy.Compiled
	v  int64
}

func (s *inspPolicies) Policy(_ context.Context, o string) (*policy.Compiled, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o != inspOrg || s.c == nil {
		return nil, 0, fmt.Errorf("no policy for organization %q", o)
	}
	return s.c, s.v, nil
}

func (s *inspPolicies) set(t *testing.T, p policy.Policy) {
	t.Helper()
	c, err := policy.Compile(p, inspCatalog)
	if err != nil {
		t.Fatalf("compile policy: %v", err)
	}
	s.mu.Lock()
	s.c = c
	s.v++
	s.mu.Unlock()
}

type inspAuth map[string]gateway.Identity // token -> identity

func (a inspAuth) Authenticate(_ context.Context, user, token string) (gateway.Identity, error) {
	for tok, id := range a {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(token)) == 1 && id.User == user {
			return id, nil
		}
	}
	return gateway.Identity{}, gateway.ErrUnauthenticated
}

// inspectEnv is a gateway with TLS inspection in front of one registry
// that answers as registry-1.docker.io and as pull.test, each on port 443
// as the gateway alone resolves them.
type inspectEnv struct {
	reg       *registrytest.Registry
	policies  *inspPolicies
	decisions *decisionLog
	addr      string
	caFile    string // the gateway CA, PEM
	caDir     string // a directory holding only the gateway CA as ca.crt
	tokens    map[string]string
}

func (e *inspectEnv) proxyURL(user string) string {
	return (&url.URL{Scheme: "http", User: url.UserPassword(user, e.tokens[user]), Host: e.addr}).String()
}

func startInspectEnv(t *testing.T) *inspectEnv {
	t.Helper()
	reg := registrytest.Start(t, "registry-1.docker.io", "pull.test")
	for _, repo := range []string{"library/alpine:latest", "verifiedco/tool:latest", "someone/tool:latest", "acme/app:latest"} {
		reg.Push(t, "registry-1.docker.io", repo)
	}
	reg.Push(t, "pull.test", "app:v1")

	dir := t.TempDir()
	ca, err := gwca.LoadOrCreate(filepath.Join(dir, "data"), "regward e2e gateway CA")
	if err != nil {
		t.Fatal(err)
	}
	caDir := filepath.Join(dir, "gateway-ca")
	if err := os.Mkdir(caDir, 0o755); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(caDir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &inspectEnv{
		reg:       reg,
		policies:  &inspPolicies{},
		decisions: &decisionLog{},
		caFile:    caFile,
		caDir:     caDir,
		tokens:    map[string]string{"alice": "rw_alice_inspect_e2e", "olivia": "rw_olivia_inspect_e2e"},
	}
	e.policies.set(t, inspPolicy())
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in, err := inspect.New(inspect.Options{
		CA:            ca,
		UpstreamRoots: reg.CertPool, // the registry's private CA, as --upstream-ca gives it
		Policies:      e.policies,
		Decisions:     e.decisions,
		LogAllowed:    true,
		Logger:        logger,
		Name:          "e2e-inspect",
	})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{
		Auth: inspAuth{
			e.tokens["alice"]:  {User: "alice", Org: inspOrg},
			e.tokens["olivia"]: {User: "olivia", Org: inspOrg, Owner: true},
		},
		Policies:    e.policies,
		Decisions:   e.decisions,
		Resolve:     map[string]string{"registry-1.docker.io": reg.Addr, "pull.test": reg.Addr},
		LogAllowed:  true,
		Name:        "e2e-inspect",
		Logger:      logger,
		Interceptor: in,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		in.Drain()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway Shutdown: %v", err)
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("gateway Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return e
}

// want checks a client command's outcome: success when denial is empty,
// otherwise a failure whose output holds denial.
func inspWant(out string, err error, denial string) error {
	switch {
	case denial == "" && err != nil:
		return fmt.Errorf("%v; output:\n%s", err, out)
	case denial != "" && err == nil:
		return fmt.Errorf("succeeded, want refused with %q; output:\n%s", denial, out)
	case denial != "" && !strings.Contains(out, denial):
		return fmt.Errorf("refused (%v) without %q in the output:\n%s", err, denial, out)
	}
	return nil
}

// exists asks the registry directly whether it holds name/repoTag.
func (e *inspectEnv) exists(t *testing.T, name, repoTag string) bool {
	t.Helper()
	ref, err := ggcrname.ParseReference(e.reg.Ref(name, repoTag))
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(ref, remote.WithTransport(e.reg.Transport()))
	return err == nil
}

func inspSucceeded(out string, err error) error { return inspWant(out, err, "") }

func inspCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestDockerThroughInspection drives a private dockerd that trusts the
// gateway CA through its SSL_CERT_FILE bundle (it ignores certs.d for
// Docker Hub names) and uses the gateway as its proxy.
func TestDockerThroughInspection(t *testing.T) {
	e := startInspectEnv(t)
	d := clienttest.StartDocker(t, clienttest.DockerOptions{ProxyURL: e.proxyURL("alice"), CABundle: e.caFile})
	ctx := inspCtx(t, 6*time.Minute)

	t.Run("pulls", func(t *testing.T) {
		for _, tc := range []struct{ ref, denial string }{
			{"alpine", ""},
			{"acme/app", ""},
			{"someone/tool", inspCommunityDenied},
			{"verifiedco/tool", "denied: image docker.io/verifiedco/tool is a verified publisher image; organization acme allows only official images and its own namespaces (acme)"},
		} {
			out, err := d.Pull(ctx, tc.ref)
			if err := inspWant(out, err, tc.denial); err != nil {
				t.Errorf("docker pull %s: %v", tc.ref, err)
			}
		}
		ds := e.decisions.findImage("docker.io/someone/tool", false)
		if len(ds) == 0 || ds[0].User != "alice" || ds[0].Category != "community" || ds[0].Rule != "imageAccess.communityImages" {
			t.Errorf("the denial of someone/tool was recorded as %+v", ds)
		}
	})

	t.Run("allowlisting applies at once", func(t *testing.T) {
		e.policies.set(t, inspPolicy("someone/tool"))
		// The daemon keeps its connection to the gateway: the first pull
		// after the change must already pass, and the first after taking
		// it back must fail.
		if err := inspSucceeded(d.Pull(ctx, "someone/tool")); err != nil {
			t.Fatalf("docker pull someone/tool right after allowlisting it: %v", err)
		}
		e.policies.set(t, inspPolicy())
		out, err := d.Pull(ctx, "someone/tool")
		if err := inspWant(out, err, inspCommunityDenied); err != nil {
			t.Fatalf("docker pull someone/tool right after removing it from the allowlist: %v", err)
		}
	})

	t.Run("push to a pull-only registry", func(t *testing.T) {
		if err := d.Tag(ctx, "alpine", "pull.test/pushed:v1"); err != nil {
			t.Fatal(err)
		}
		out, err := d.Push(ctx, "pull.test/pushed:v1")
		if err := inspWant(out, err, inspPullOnlyDenied); err != nil {
			t.Errorf("docker push to pull.test: %v", err)
		}
		if e.exists(t, "pull.test", "pushed:v1") {
			t.Errorf("the denied push reached the registry")
		}
		if err := inspSucceeded(d.Pull(ctx, "pull.test/app:v1")); err != nil {
			t.Errorf("docker pull from pull.test: %v", err)
		}
	})

	t.Run("push only to the org's namespaces", func(t *testing.T) {
		for _, tc := range []struct{ ref, denial string }{
			{"someone/x:v1", inspNamespaceDenied},
			{"acme/x:v1", ""},
		} {
			if err := d.Tag(ctx, "alpine", tc.ref); err != nil {
				t.Fatal(err)
			}
			out, err := d.Push(ctx, tc.ref)
			if err := inspWant(out, err, tc.denial); err != nil {
				t.Errorf("docker push %s: %v", tc.ref, err)
			}
			if got := e.exists(t, "registry-1.docker.io", tc.ref); got != (tc.denial == "") {
				t.Errorf("after docker push %s, the registry has it: %v", tc.ref, got)
			}
		}
	})

	t.Run("owner", func(t *testing.T) {
		// dockerd reads its proxy credential once: an owner needs another daemon.
		d2 := clienttest.StartDocker(t, clienttest.DockerOptions{ProxyURL: e.proxyURL("olivia"), CABundle: e.caFile})
		if err := inspSucceeded(d2.Pull(ctx, "someone/tool")); err != nil {
			t.Fatalf("docker pull someone/tool as an owner: %v", err)
		}
		if ds := e.decisions.findImage("docker.io/someone/tool", true); len(ds) == 0 || ds[len(ds)-1].Rule != "ownerBypass" {
			t.Errorf("the owner's pull was recorded as %+v", ds)
		}
	})
}

// TestSkopeoThroughInspection copies the same images with skopeo, which
// takes the gateway CA from --src-cert-dir for Docker Hub names too.
func TestSkopeoThroughInspection(t *testing.T) {
	clienttest.RequireSkopeo(t)
	e := startInspectEnv(t)
	ctx := inspCtx(t, 3*time.Minute)
	for _, tc := range []struct{ user, ref, denial string }{
		{"alice", "docker.io/library/alpine:latest", ""},
		{"alice", "docker.io/acme/app:latest", ""},
		{"alice", "docker.io/someone/tool:latest", inspCommunityDenied},
		{"olivia", "docker.io/someone/tool:latest", ""},
	} {
		out, err := clienttest.SkopeoCopy(ctx, e.proxyURL(tc.user), e.caDir, "docker://"+tc.ref, "dir:"+filepath.Join(t.TempDir(), "img"))
		if err := inspWant(out, err, tc.denial); err != nil {
			t.Errorf("skopeo copy %s as %s: %v", tc.ref, tc.user, err)
		}
	}
	out, err := clienttest.SkopeoCopy(ctx, e.proxyURL("alice"), e.caDir, "docker://docker.io/library/alpine:latest", "docker://pull.test/copied:v1")
	if err := inspWant(out, err, inspPullOnlyDenied); err != nil {
		t.Errorf("skopeo copy to the pull-only registry: %v", err)
	}
}
