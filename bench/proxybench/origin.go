package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/regward/regward/internal/registrytest"
)

// origin is the TLS server every path leads to. Its bodies come from a
// fixed random buffer written repeatedly, so serving costs no disk and no
// generation time beyond the copy and the encryption.
type origin struct {
	addr string // 127.0.0.1:PORT
	pool *x509.CertPool
	srv  *http.Server
}

const chunkSize = 256 << 10

func startOrigin() (*origin, error) {
	ca, err := registrytest.NewCA("proxybench CA")
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		return nil, err
	}
	chunk := make([]byte, chunkSize)
	if _, err := rand.Read(chunk); err != nil {
		return nil, fmt.Errorf("origin body: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 || n > 64<<30 {
			http.Error(w, "n: want a byte count up to 64 GiB", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		w.Header().Set("Content-Type", "application/octet-stream")
		for n > 0 {
			k := min(n, chunkSize)
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("origin listen: %w", err)
	}
	o := &origin{addr: ln.Addr().String(), pool: ca.Pool()}
	o.srv = &http.Server{
		Handler: mux,
		// Idle tunnels hold a handshaken connection without a request for
		// the whole memory scenario.
		ReadHeaderTimeout: 5 * time.Minute,
		IdleTimeout:       5 * time.Minute,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			// HTTP/1.1 only: the client speaks it by hand.
			NextProtos: []string{"http/1.1"},
		},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	go o.srv.ServeTLS(ln, "", "")
	return o, nil
}

func (o *origin) close() { o.srv.Close() }

// sink is a listener on the port that denied CONNECTs name. It counts
// connections: any would mean a proxy dialled a target it should have
// refused.
type sink struct {
	ln    net.Listener
	addr  string
	count chan struct{}
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink listen: %w", err)
	}
	s := &sink{ln: ln, addr: ln.Addr().String(), count: make(chan struct{}, 1<<20)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			select {
			case s.count <- struct{}{}:
			default:
			}
		}
	}()
	return s, nil
}

func (s *sink) accepted() int { return len(s.count) }
