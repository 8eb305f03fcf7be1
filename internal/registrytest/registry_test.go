package registrytest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestPushPullEveryName(t *testing.T) {
	r := Start(t, "allowed.test", "denied.test", "registry-1.docker.io")
	img := r.Push(t, "allowed.test", "app:v1")
	want, err := Digest(img)
	if err != nil {
		t.Fatal(err)
	}
	// One registry answers for every name: the image pushed under one name
	// is visible under the others.
	for _, n := range r.Names {
		ref, err := parseRef(r.Ref(n, "app:v1"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Image(ref, remote.WithTransport(r.Transport()))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		d, err := got.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if d.String() != want {
			t.Errorf("pull %s: digest %s, want %s", ref, d, want)
		}
		cf, err := got.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("pull %s: platform %s/%s, want linux/amd64", ref, cf.OS, cf.Architecture)
		}
	}
	if r.Hits(r.HostPort("denied.test")) == 0 {
		t.Errorf("Hits(denied.test) = 0 after a pull through that name")
	}
	if n := r.Hits(r.HostPort("nothing.test")); n != 0 {
		t.Errorf("Hits(nothing.test) = %d, want 0", n)
	}
}

func TestCertificateAndCAFile(t *testing.T) {
	r := Start(t, "allowed.test")
	data, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("CA file %s holds no PEM certificate", r.CAFile)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA {
		t.Errorf("CA file certificate is not a CA")
	}
	entries, err := os.ReadDir(r.CADir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "ca.crt" {
		t.Errorf("CADir holds %v, want only ca.crt", entries)
	}

	// The server certificate must verify for the made-up name and for the
	// IP literal, and not for a name it was not issued for.
	for _, tc := range []struct {
		serverName string
		ok         bool
	}{
		{"allowed.test", true},
		{"127.0.0.1", true},
		{"denied.test", false},
	} {
		conn, err := tls.Dial("tcp", r.Addr, &tls.Config{RootCAs: r.CertPool, ServerName: tc.serverName})
		if conn != nil {
			conn.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("TLS to %s as %q: err = %v, want ok=%v", r.Addr, tc.serverName, err, tc.ok)
		}
	}
	if _, err := (&tls.Dialer{Config: &tls.Config{ServerName: "allowed.test"}}).Dial("tcp", r.Addr); err == nil {
		t.Errorf("TLS without the test CA succeeded; the certificate must not chain to system roots")
	}
}

func TestTransportRefusesOtherHosts(t *testing.T) {
	r := Start(t, "allowed.test")
	c := &http.Client{Transport: r.Transport(), Timeout: 10 * time.Second}
	resp, err := c.Get("https://" + r.HostPort("allowed.test") + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/ by name: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/: status %d, want 200", resp.StatusCode)
	}
	_, err = c.Get("https://" + r.HostPort("other.test") + "/v2/")
	if err == nil || !strings.Contains(err.Error(), "not served by the test registry") {
		t.Errorf("GET via a name the registry does not serve: err = %v, want a refusal", err)
	}
}

func TestPushRejectsUnknownName(t *testing.T) {
	r := Start(t, "allowed.test")
	img, err := RandomImage(16)
	if err != nil {
		t.Fatal(err)
	}
	err = r.PushImage(context.Background(), "other.test", "app:v1", img)
	if err == nil || !strings.Contains(err.Error(), `"other.test"`) {
		t.Errorf("PushImage to an unknown name: err = %v, want one naming it", err)
	}
}

func TestNewAndClose(t *testing.T) {
	if _, err := New("", "bad:name"); err == nil || !strings.Contains(err.Error(), `"bad:name"`) {
		t.Errorf("New with a name holding a port: err = %v, want one naming it", err)
	}
	r, err := New("", "allowed.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.CAFile); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(r.CADir); !os.IsNotExist(err) {
		t.Errorf("after Close, %s still exists (err %v)", r.CADir, err)
	}
	if _, err := tls.Dial("tcp", r.Addr, &tls.Config{RootCAs: r.CertPool, ServerName: "allowed.test"}); err == nil {
		t.Errorf("registry still answers after Close")
	}
}
