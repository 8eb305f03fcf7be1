package registrytest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is an in-process OCI registry served over TLS on 127.0.0.1. One
// registry answers for every name it was started with: pkg/registry keys
// repositories by path only, so allowed.test:PORT/app and
// denied.test:PORT/app are the same repository.
type Registry struct {
	Addr     string   // 127.0.0.1:PORT
	Port     int      // the listening port; clients use NAME:Port
	Names    []string // the made-up host names the certificate covers
	CA       *CA
	CAFile   string // PEM file of the CA certificate, named ca.crt
	CADir    string // the directory holding only CAFile (skopeo --cert-dir, podman --cert-dir)
	CertPool *x509.CertPool

	srv      *http.Server
	ln       net.Listener
	ownedDir string // removed by Close when New made it

	mu   sync.Mutex
	hits map[string]int // requests by Host header, lowercased
}

// Start runs a registry for the test's lifetime. names are made-up DNS
// names the server certificate covers (127.0.0.1 is always covered). It
// fails the test if the registry cannot start.
func Start(t testing.TB, names ...string) *Registry {
	t.Helper()
	r, err := newRegistry(t.TempDir(), false, names)
	if err != nil {
		t.Fatalf("start test registry: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close test registry: %v", err)
		}
	})
	return r
}

// New runs a registry outside of a test (benchmarks, tools). dir receives
// the CA file; when dir is empty a temporary directory is made and Close
// removes it. The caller must call Close.
func New(dir string, names ...string) (*Registry, error) {
	owned := false
	if dir == "" {
		d, err := os.MkdirTemp("", "registrytest-")
		if err != nil {
			return nil, fmt.Errorf("make registry directory: %w", err)
		}
		dir, owned = d, true
	}
	r, err := newRegistry(dir, owned, names)
	if err != nil && owned {
		os.RemoveAll(dir)
	}
	return r, err
}

func newRegistry(dir string, owned bool, names []string) (*Registry, error) {
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, ":/@ ") {
			return nil, fmt.Errorf("registry name %q: want a bare host name without port", n)
		}
	}
	ca, err := NewCA("regward test registry CA")
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(append(append([]string{}, names...), "127.0.0.1")...)
	if err != nil {
		return nil, err
	}
	caDir := filepath.Join(dir, "registry-ca")
	if err := os.MkdirAll(caDir, 0o755); err != nil {
		return nil, fmt.Errorf("make CA directory: %w", err)
	}
	caFile := filepath.Join(caDir, "ca.crt")
	// 0644: dockerd, podman and skopeo read it, and they may not run as the test's user.
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		return nil, fmt.Errorf("write CA file: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for registry: %w", err)
	}
	r := &Registry{
		Addr:     ln.Addr().String(),
		Port:     ln.Addr().(*net.TCPAddr).Port,
		Names:    append([]string{}, names...),
		CA:       ca,
		CAFile:   caFile,
		CADir:    caDir,
		CertPool: ca.Pool(),
		ln:       ln,
		hits:     map[string]int{},
	}
	if owned {
		r.ownedDir = dir
	}
	// pkg/registry logs every request; a test that fails shows the client's
	// view, which is what matters here.
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = &http.Server{
		Handler:           r.count(h),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go r.srv.ServeTLS(ln, "", "")
	return r, nil
}

func (r *Registry) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.hits[strings.ToLower(req.Host)]++
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

// Hits returns how many requests arrived with this Host header
// ("allowed.test:PORT"). Tests use it to prove that a denied pull never
// reached the registry.
func (r *Registry) Hits(hostport string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[strings.ToLower(hostport)]
}

// HostPort returns "name:PORT", the registry part of an image reference.
func (r *Registry) HostPort(name string) string {
	return net.JoinHostPort(name, strconv.Itoa(r.Port))
}

// Ref returns "name:PORT/repoTag".
func (r *Registry) Ref(name, repoTag string) string {
	return r.HostPort(name) + "/" + repoTag
}

// Close stops the registry and removes a directory New made.
func (r *Registry) Close() error {
	err := r.srv.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if r.ownedDir != "" {
		if rerr := os.RemoveAll(r.ownedDir); rerr != nil && err == nil {
			err = fmt.Errorf("remove registry directory: %w", rerr)
		}
	}
	return err
}

// Transport returns a transport that trusts the registry's CA and dials
// every one of its names straight to 127.0.0.1:PORT, bypassing any proxy:
// it is how tests seed images without going through the system under test.
func (r *Registry) Transport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("registry transport: %w", err)
			}
			if port != strconv.Itoa(r.Port) || !r.serves(host) {
				return nil, fmt.Errorf("registry transport: %s is not served by the test registry at %s", addr, r.Addr)
			}
			return d.DialContext(ctx, "tcp", r.Addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: r.CertPool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

func (r *Registry) serves(host string) bool {
	host = strings.ToLower(host)
	if host == "127.0.0.1" {
		return true
	}
	for _, n := range r.Names {
		if strings.EqualFold(n, host) {
			return true
		}
	}
	return false
}

// RandomImage returns a small image with one random layer of size bytes.
// Its config names linux/amd64, which docker and podman check when pulling.
func RandomImage(size int64) (v1.Image, error) {
	img, err := random.Image(size, 1)
	if err != nil {
		return nil, fmt.Errorf("random image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("random image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set image platform: %w", err)
	}
	return img, nil
}

// PushImage writes img to name:PORT/repoTag directly (not through a proxy).
func (r *Registry) PushImage(ctx context.Context, name, repoTag string, img v1.Image) error {
	if !r.serves(name) {
		return fmt.Errorf("push %s: name %q is not one of the registry's names %v", repoTag, name, r.Names)
	}
	ref, err := parseRef(r.Ref(name, repoTag))
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(r.Transport())); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// Push writes a small random image to name:PORT/repoTag and returns it; it
// fails the test on error.
func (r *Registry) Push(t testing.TB, name, repoTag string) v1.Image {
	t.Helper()
	img, err := RandomImage(1024)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.PushImage(ctx, name, repoTag, img); err != nil {
		t.Fatal(err)
	}
	return img
}

// Digest returns the manifest digest of img, as clients print it.
func Digest(img v1.Image) (string, error) {
	h, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("image digest: %w", err)
	}
	return h.String(), nil
}

func parseRef(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	return ref, nil
}
