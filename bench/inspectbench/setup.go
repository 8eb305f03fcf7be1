package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/gwca"
	"github.com/regward/regward/internal/inspect"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/registrytest"
)

const (
	org           = "bench"
	inspectedHost = "registry-1.docker.io"
	blindHost     = "blind.test"
)

// blob is the content the origin serves: a random block repeated.
type blob struct {
	block  []byte
	size   int64
	digest string
}

func newBlob(size int64) (*blob, error) {
	b := &blob{block: make([]byte, 1<<20+13), size: size}
	if _, err := rand.Read(b.block); err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, b.reader()); err != nil {
		return nil, err
	}
	b.digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return b, nil
}

func (b *blob) reader() io.Reader { return &blobReader{b: b} }

type blobReader struct {
	b   *blob
	off int64
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.off >= r.b.size {
		return 0, io.EOF
	}
	i := int(r.off % int64(len(r.b.block)))
	n := copy(p, r.b.block[i:])
	if rest := r.b.size - r.off; int64(n) > rest {
		n = int(rest)
	}
	r.off += int64(n)
	return n, nil
}

func (b *blob) path() string { return "/v2/library/big/blobs/" + b.digest }

// setup is the origin, the gateway with the inspector, and what a client
// needs to use them.
type setup struct {
	blob    *blob
	origin  *http.Server
	gw      *gateway.Gateway
	in      *inspect.Inspector
	ca      *gwca.CA
	proxy   string // 127.0.0.1:PORT of the gateway
	roots   *x509.CertPool
	dir     string
	served  chan error
	started time.Time
}

func start(o options) (*setup, error) {
	s := &setup{served: make(chan error, 2), started: time.Now()}
	var err error
	if s.dir, err = os.MkdirTemp("", "inspectbench-"); err != nil {
		return nil, err
	}
	if s.blob, err = newBlob(o.size); err != nil {
		return s, err
	}
	originCA, err := registrytest.NewCA("inspectbench origin CA")
	if err != nil {
		return s, err
	}
	cert, err := originCA.Issue(inspectedHost, blindHost)
	if err != nil {
		return s, err
	}
	oln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return s, err
	}
	s.origin = &http.Server{
		Handler:   s.originHandler(),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	go func() { s.served <- s.origin.ServeTLS(oln, "", "") }()

	if s.ca, err = gwca.LoadOrCreate(filepath.Join(s.dir, "ca"), "inspectbench gateway CA"); err != nil {
		return s, err
	}
	p := policy.Default(org)
	p.RegistryAccess.Registries = []policy.Registry{{Host: policy.DockerHubGroup}, {Host: blindHost}}
	p.ImageAccess.Enabled = true
	c, err := policy.Compile(p, policy.Catalog{})
	if err != nil {
		return s, err
	}
	src := staticPolicy{c}
	if s.in, err = inspect.New(inspect.Options{CA: s.ca, UpstreamRoots: originCA.Pool(), Policies: src, Name: "inspectbench"}); err != nil {
		return s, err
	}
	s.gw, err = gateway.New(gateway.Config{
		Auth:           noAuth{},
		Policies:       src,
		AllowAnonymous: true,
		AnonymousOrg:   org,
		Resolve:        map[string]string{inspectedHost: oln.Addr().String(), blindHost: oln.Addr().String()},
		Interceptor:    s.in,
		Name:           "inspectbench",
	})
	if err != nil {
		return s, err
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return s, err
	}
	s.proxy = gln.Addr().String()
	go func() { s.served <- s.gw.Serve(gln) }()
	s.roots = x509.NewCertPool()
	s.roots.AddCert(s.ca.Certificate())
	s.roots.AddCert(originCA.Cert)
	return s, nil
}

func (s *setup) originHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/", "/v2":
			w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
			io.WriteString(w, "{}")
		case s.blob.path():
			w.Header().Set("Content-Length", strconv.FormatInt(s.blob.size, 10))
			w.Header().Set("Docker-Content-Digest", s.blob.digest)
			w.Header().Set("Content-Type", "application/octet-stream")
			if r.Method != http.MethodHead {
				io.Copy(w, s.blob.reader())
			}
		default:
			http.NotFound(w, r)
		}
	})
}

func (s *setup) close() error {
	var errs []error
	if s.gw != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.in.Drain()
		if err := s.gw.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gateway shutdown: %w", err))
		}
		cancel()
	}
	if s.origin != nil {
		s.origin.Close()
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// transport is a client going through the gateway, trusting the gateway CA
// and the origin's CA (for the blind tunnel).
func (s *setup) transport(h2 bool) *http.Transport {
	tr := &http.Transport{
		Proxy:              http.ProxyURL(mustURL("http://" + s.proxy)),
		TLSClientConfig:    &tls.Config{RootCAs: s.roots},
		ForceAttemptHTTP2:  h2,
		DisableCompression: true,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return tr
}

type staticPolicy struct{ c *policy.Compiled }

func (p staticPolicy) Policy(context.Context, string) (*policy.Compiled, int64, error) {
	return p.c, 1, nil
}

type noAuth struct{}

func (noAuth) Authenticate(context.Context, string, string) (gateway.Identity, error) {
	return gateway.Identity{}, gateway.ErrUnauthenticated
}
