package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/regward/regward/internal/gwca"
	"github.com/regward/regward/internal/policy"
)

// gatewayFlags configure a gateway, embedded in serve or standalone.
type gatewayFlags struct {
	listen         string
	resolve        []string
	logAllowed     bool
	maxConns       int
	tlsCert        string
	tlsKey         string
	allowAnonymous bool
	name           string
	caCert, caKey  string
	upstreamCA     []string
}

func (g *gatewayFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&g.listen, "proxy-listen", "127.0.0.1:3128", "address of the gateway (forward proxy)")
	fl.StringArrayVar(&g.resolve, "resolve", nil, "NAME=IP:PORT: dial IP:PORT for NAME instead of resolving it (repeatable)")
	fl.BoolVar(&g.logAllowed, "log-allowed", false, "record allowed decisions too (denials always are)")
	fl.IntVar(&g.maxConns, "max-conns", 10000, "most client connections the gateway holds at once")
	fl.StringVar(&g.tlsCert, "proxy-tls-cert", "", "serve the gateway as an HTTPS proxy with this certificate (PEM)")
	fl.StringVar(&g.tlsKey, "proxy-tls-key", "", "private key for --proxy-tls-cert (PEM)")
	help := "let clients without credentials through as anonymous members of --org (no owner bypass)"
	fl.BoolVar(&g.allowAnonymous, "allow-anonymous", false, help)
	fl.StringVar(&g.caCert, "ca-cert", "", "gateway CA certificate (PEM) for TLS inspection; serve creates one in --data when unset")
	fl.StringVar(&g.caKey, "ca-key", "", "private key of --ca-cert (PEM, mode 0600)")
	fl.StringArrayVar(&g.upstreamCA, "upstream-ca", nil, "extra CA (PEM file) trusted for registries' certificates, besides the system roots (repeatable)")
	host, _ := os.Hostname()
	fl.StringVar(&g.name, "gateway-name", host, "name of this gateway in the decision log")
}

// resolveMap parses --resolve NAME=IP:PORT entries.
func (g *gatewayFlags) resolveMap() (map[string]string, error) {
	m := make(map[string]string, len(g.resolve))
	for _, r := range g.resolve {
		name, addr, ok := strings.Cut(r, "=")
		if !ok {
			return nil, fmt.Errorf("--resolve %q: want NAME=IP:PORT", r)
		}
		host, err := policy.NormalizeHost(name)
		if err != nil {
			return nil, fmt.Errorf("--resolve %q: %w", r, err)
		}
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, fmt.Errorf("--resolve %q: %q is not IP:PORT", r, addr)
		}
		m[host] = ap.String()
	}
	return m, nil
}

// listen opens the gateway listener, as an HTTPS proxy when a certificate is set.
func (g *gatewayFlags) listener(ctx context.Context) (net.Listener, error) {
	if (g.tlsCert == "") != (g.tlsKey == "") {
		return nil, fmt.Errorf("--proxy-tls-cert and --proxy-tls-key go together")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", g.listen)
	if err != nil {
		return nil, fmt.Errorf("--proxy-listen %s: %w", g.listen, err)
	}
	if g.tlsCert == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(g.tlsCert, g.tlsKey)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("load --proxy-tls-cert: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// staticPolicy serves one org's policy from a file, for gateways that run
// without a control plane (air-gapped sites, benchmarks).
type staticPolicy struct {
	org      string
	compiled *policy.Compiled
}

func loadStaticPolicy(path, org string) (*staticPolicy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --policy-file: %w", err)
	}
	p, err := policy.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if p.Org == "" {
		p.Org = org
	}
	if org == "" {
		org = p.Org
	}
	if p.Org != org {
		return nil, fmt.Errorf("%s is the policy of organization %q, not %q", path, p.Org, org)
	}
	if err := p.Validate(policy.Limits{}); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c, err := policy.Compile(p, policy.DefaultCatalog())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &staticPolicy{org: org, compiled: c}, nil
}

func (s *staticPolicy) Policy(_ context.Context, org string) (*policy.Compiled, int64, error) {
	if org != s.org {
		return nil, 0, fmt.Errorf("policy for organization %s is unknown: this gateway serves only %s", org, s.org)
	}
	return s.compiled, 1, nil
}

// loadCA returns the gateway CA from --ca-cert/--ca-key, or the one in dir
// (created there on first use) when dir is set; nil when neither is.
func (g *gatewayFlags) loadCA(dir string) (*gwca.CA, error) {
	switch {
	case (g.caCert == "") != (g.caKey == ""):
		return nil, fmt.Errorf("--ca-cert and --ca-key go together")
	case g.caCert != "":
		return gwca.Load(g.caCert, g.caKey)
	case dir != "":
		return gwca.LoadOrCreate(dir, "regward gateway CA")
	}
	return nil, nil
}

// upstreamRoots is the system roots plus every --upstream-ca file.
func (g *gatewayFlags) upstreamRoots() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range g.upstreamCA {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--upstream-ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--upstream-ca %s: no PEM certificate in it", f)
		}
	}
	return pool, nil
}
