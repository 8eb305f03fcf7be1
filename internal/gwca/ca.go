package gwca

import (
	"container/list"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File names of a CA created in a data directory.
const (
	CertFile = "gateway-ca.pem"
	KeyFile  = "gateway-ca-key.pem"
)

// Lifetimes: the CA outlives any sensible deployment; leaves are short so
// a leaked one is soon useless.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 24 * time.Hour
	leafRenew    = 2 * time.Hour // mint anew when less than this is left
	clockSkew    = time.Hour     // NotBefore in the past for clients with slow clocks
)

// DefaultCacheSize bounds the leaf cache.
const DefaultCacheSize = 1024

// CA signs leaf certificates for inspected hosts.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	now     func() time.Time

	mu      sync.Mutex
	cache   map[string]*list.Element // host -> element of lru holding *entry
	lru     *list.List               // front: most recently used
	max     int
	minting map[string]*mintCall
}

type entry struct {
	host string
	cert *tls.Certificate
	exp  time.Time // when to mint anew
}

type mintCall struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// LoadOrCreate loads the CA in dir, creating it on first use. The key file is
// written with mode 0600; an existing key file readable by others is refused.
func LoadOrCreate(dir, name string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	_, cerr := os.Stat(certPath)
	_, kerr := os.Stat(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		return Load(certPath, keyPath)
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("gateway CA in %s is incomplete (need both %s and %s): restore both or remove both to make a new CA", dir, CertFile, KeyFile)
	}
	certPEM, keyPEM, err := newCA(name, time.Now())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := writeFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return Load(certPath, keyPath)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func newCA(name string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if name == "" {
		name = "regward gateway CA"
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"regward"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create gateway CA: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return n.Add(n, big.NewInt(1))
}

// Load reads a CA certificate and its private key (PEM; PKCS#8, EC or RSA).
func Load(certFile, keyFile string) (*CA, error) {
	// Group read is allowed (Kubernetes mounts Secrets 0440 with fsGroup,
	// as PostgreSQL allows 0640 keys); world access or group write is not.
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o027 != 0 {
		return nil, fmt.Errorf("gateway CA key %s is open to others (mode %v): chmod 600 (or 640) it", keyFile, fi.Mode().Perm())
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load gateway CA: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse gateway CA certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is not a CA certificate (it cannot sign certificates)", certFile)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("gateway CA key cannot sign")
	}
	return &CA{
		cert: cert, key: signer,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		now:     time.Now, max: DefaultCacheSize,
		cache: make(map[string]*list.Element), lru: list.New(), minting: make(map[string]*mintCall),
	}, nil
}

// CertPEM is the CA certificate that clients must trust.
func (c *CA) CertPEM() []byte { return c.certPEM }

// Certificate is the parsed CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// Fingerprint is the SHA-256 of the CA certificate, for people to compare.
func (c *CA) Fingerprint() string {
	sum := sha256.Sum256(c.cert.Raw)
	return fmt.Sprintf("%X", sum[:])
}

// SetCacheSize changes the LRU bound (at least 1).
func (c *CA) SetCacheSize(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max = max(n, 1)
	c.evictLocked()
}

// Leaf returns a certificate for host (a DNS name or IP literal), from the
// cache when a fresh one is there. Concurrent calls for one host mint once.
func (c *CA) Leaf(host string) (*tls.Certificate, error) {
	now := c.now()
	c.mu.Lock()
	if el, ok := c.cache[host]; ok {
		e := el.Value.(*entry)
		if now.Before(e.exp) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.cert, nil
		}
	}
	if call, ok := c.minting[host]; ok {
		c.mu.Unlock()
		<-call.done
		return call.cert, call.err
	}
	call := &mintCall{done: make(chan struct{})}
	c.minting[host] = call
	c.mu.Unlock()

	call.cert, call.err = c.mint(host, now)

	c.mu.Lock()
	delete(c.minting, host)
	if call.err == nil {
		if el, ok := c.cache[host]; ok {
			c.lru.Remove(el)
		}
		c.cache[host] = c.lru.PushFront(&entry{host: host, cert: call.cert, exp: call.cert.Leaf.NotAfter.Add(-leafRenew)})
		c.evictLocked()
	}
	c.mu.Unlock()
	close(call.done)
	return call.cert, call.err
}

func (c *CA) evictLocked() {
	for c.lru.Len() > c.max {
		el := c.lru.Back()
		c.lru.Remove(el)
		delete(c.cache, el.Value.(*entry).host)
	}
}

// CacheLen is the number of cached leaves.
func (c *CA) CacheLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *CA) mint(host string, now time.Time) (*tls.Certificate, error) {
	if host == "" {
		return nil, errors.New("mint leaf: empty host")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(leafLifetime)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("mint leaf for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}
