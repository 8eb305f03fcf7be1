package gwca

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadOrCreateKeepsTheCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreate(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v mode %v", err, fi.Mode())
	}
	again, err := LoadOrCreate(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if ca.Fingerprint() != again.Fingerprint() {
		t.Fatal("a second start made a new CA")
	}
	if c := ca.Certificate(); !c.IsCA || c.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("CA: IsCA %v algorithm %v", c.IsCA, c.PublicKeyAlgorithm)
	}
}

func TestRefusesLooseKeyAndHalfACA(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir, ""); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o644)
	if _, err := LoadOrCreate(dir, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o660)
	if _, err := LoadOrCreate(dir, ""); err == nil {
		t.Fatal("group-writable key accepted")
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o440)
	if _, err := LoadOrCreate(dir, ""); err != nil {
		t.Fatalf("a 0440 key (Kubernetes Secret with fsGroup) refused: %v", err)
	}
	os.Remove(filepath.Join(dir, KeyFile))
	if _, err := LoadOrCreate(dir, ""); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("half a CA: %v", err)
	}
}

func TestLeafVerifiesForItsHostOnly(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	for _, host := range []string{"registry-1.docker.io", "127.0.0.1"} {
		leaf, err := ca.Leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("leaf for %s does not verify: %v", host, err)
		}
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "evil.test", Roots: roots}); err == nil {
			t.Errorf("leaf for %s verifies for evil.test", host)
		}
		if life := leaf.Leaf.NotAfter.Sub(time.Now()); life > 25*time.Hour {
			t.Errorf("leaf lives %v, want short-lived", life)
		}
		if leaf.Leaf.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("leaf key %v, want ECDSA P-256", leaf.Leaf.PublicKeyAlgorithm)
		}
	}
}

func TestLeafCacheIsBoundedLRU(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	ca.SetCacheSize(2)
	a, _ := ca.Leaf("a.test")
	if b, _ := ca.Leaf("a.test"); b != a {
		t.Fatal("second call did not hit the cache")
	}
	ca.Leaf("b.test")
	ca.Leaf("a.test") // a is now most recent
	ca.Leaf("c.test") // evicts b
	if ca.CacheLen() != 2 {
		t.Fatalf("cache holds %d, want 2", ca.CacheLen())
	}
	if again, _ := ca.Leaf("a.test"); again != a {
		t.Fatal("most recently used entry was evicted")
	}
	// Expired entries are minted anew.
	ca.now = func() time.Time { return time.Now().Add(23 * time.Hour) }
	if again, _ := ca.Leaf("a.test"); again == a {
		t.Fatal("a leaf near expiry was served from the cache")
	}
}

func TestConcurrentLeafMintsOnce(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	certs := make([]*tls.Certificate, 16)
	for i := range certs {
		wg.Add(1)
		go func() { defer wg.Done(); certs[i], _ = ca.Leaf("same.test") }()
	}
	wg.Wait()
	for _, c := range certs[1:] {
		if c != certs[0] {
			t.Fatal("concurrent calls minted more than one leaf")
		}
	}
}

func BenchmarkLeafCacheHit(b *testing.B) {
	ca, err := LoadOrCreate(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	ca.Leaf("registry-1.docker.io")
	b.ResetTimer()
	for b.Loop() {
		ca.Leaf("registry-1.docker.io")
	}
}

func BenchmarkLeafMint(b *testing.B) {
	ca, err := LoadOrCreate(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	ca.SetCacheSize(1)
	hosts := []string{"a.test", "b.test"}
	i := 0
	for b.Loop() {
		ca.Leaf(hosts[i%2])
		i++
	}
}
