package inspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regward/regward/internal/gateway"
)

// blobSize is what the streaming tests move: far more than the memory
// they allow the process to grow by.
const blobSize = 256 << 20

// patternBlock is repeated to make a blob; its own length is prime to the
// copy buffers so that no read lines up with it.
var patternBlock = func() []byte {
	b := make([]byte, 1<<20+7)
	r := rand.New(rand.NewChaCha8([32]byte{'r', 'e', 'g', 'w', 'a', 'r', 'd'}))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// patternReader yields n bytes of patternBlock repeated.
type patternReader struct {
	off, n int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	i := int(p.off % int64(len(patternBlock)))
	k := copy(b, patternBlock[i:])
	if rest := p.n - p.off; int64(k) > rest {
		k = int(rest)
	}
	p.off += int64(k)
	return k, nil
}

var blobDigest = sync.OnceValue(func() string {
	h := sha256.New()
	io.Copy(h, &patternReader{n: blobSize})
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
})

// hubUpstream runs h as Docker Hub's registry (index.docker.io) behind a
// gateway with the inspector.
func hubUpstream(t *testing.T, h http.Handler, opts ...envOption) *env {
	t.Helper()
	up := startUpstream(t, h, []string{"h2", "http/1.1"}, "index.docker.io")
	return newEnv(t, append([]envOption{func(e *env, o *Options, g *gateway.Config) {
		g.Resolve["index.docker.io"] = up.addr()
		o.UpstreamRoots.AddCert(up.ca.Cert)
	}}, opts...)...)
}

// blobHandler serves the pattern blob at /v2/library/big/blobs/DIGEST and
// takes uploads at /v2/acme/app/blobs/uploads/ID, hashing what arrives.
type blobHandler struct {
	mu       sync.Mutex
	received int64
	sum      string
}

func (b *blobHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v2/library/big/blobs/"+blobDigest():
		w.Header().Set("Content-Length", strconv.Itoa(blobSize))
		w.Header().Set("Docker-Content-Digest", blobDigest())
		io.Copy(w, &patternReader{n: blobSize})
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/v2/acme/app/blobs/uploads/"):
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		b.mu.Lock()
		b.received, b.sum = n, "sha256:"+hex.EncodeToString(h.Sum(nil))
		b.mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// heapWatch samples the heap in use until stopped and reports its
// largest growth over the level at start.
type heapWatch struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{base: ms.HeapInuse, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > w.peak.Load() {
				w.peak.Store(ms.HeapInuse)
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *heapWatch) growth() uint64 {
	close(w.stop)
	<-w.done
	if p := w.peak.Load(); p > w.base {
		return p - w.base
	}
	return 0
}

// maxGrowth is what streaming a blob may add to the heap: copy buffers,
// HTTP/2 flow-control windows (a few MiB per stream on each side) and
// garbage the collector has not reclaimed yet; never the blob.
const maxGrowth = 64 << 20

func TestLargeBlobIsStreamed(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 1 GiB through the inspector")
	}
	bh := &blobHandler{}
	e := hubUpstream(t, bh)
	for _, tc := range []struct {
		name string
		h2   bool
	}{{"HTTP/2", true}, {"HTTP/1.1", false}} {
		t.Run("download over "+tc.name, func(t *testing.T) {
			c := &http.Client{Transport: e.clientTransport("alice", aliceToken, tc.h2)}
			hw := watchHeap()
			resp, err := c.Get("https://index.docker.io/v2/library/big/blobs/" + blobDigest())
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			resp.Body.Close()
			grew := hw.growth()
			if err != nil || n != blobSize || resp.ContentLength != blobSize {
				t.Fatalf("read %d of %d bytes (Content-Length %d): %v", n, blobSize, resp.ContentLength, err)
			}
			if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != blobDigest() {
				t.Fatalf("digest %s, want %s", got, blobDigest())
			}
			t.Logf("heap grew by %d KiB moving %d MiB", grew>>10, blobSize>>20)
			if grew > maxGrowth {
				t.Errorf("heap grew by %d MiB while streaming a %d MiB blob", grew>>20, blobSize>>20)
			}
			ds := e.decisions.find("index.docker.io", "docker.io/library/big", true)
			if len(ds) == 0 || ds[len(ds)-1].Digest != blobDigest() {
				t.Errorf("blob pull recorded as %+v", ds)
			}
		})
		t.Run("upload over "+tc.name, func(t *testing.T) {
			c := &http.Client{Transport: e.clientTransport("alice", aliceToken, tc.h2)}
			hw := watchHeap()
			// A body of unknown length over HTTP/2, a Content-Length over
			// HTTP/1.1: both framings stream.
			var body io.Reader = &patternReader{n: blobSize}
			if tc.h2 {
				body = struct{ io.Reader }{body}
			}
			req, err := http.NewRequest(http.MethodPatch, "https://index.docker.io/v2/acme/app/blobs/uploads/upload-1", body)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.h2 {
				req.ContentLength = blobSize
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			grew := hw.growth()
			bh.mu.Lock()
			received, sum := bh.received, bh.sum
			bh.mu.Unlock()
			if resp.StatusCode != http.StatusAccepted || received != blobSize || sum != blobDigest() {
				t.Fatalf("upload answered %s; the registry received %d bytes, %s", resp.Status, received, sum)
			}
			t.Logf("heap grew by %d KiB uploading %d MiB", grew>>10, blobSize>>20)
			if grew > maxGrowth {
				t.Errorf("heap grew by %d MiB while uploading a %d MiB blob", grew>>20, blobSize>>20)
			}
		})
	}
}

func TestIdleTransferIsEnded(t *testing.T) {
	upstreamGaveUp := make(chan struct{}, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(4<<20))
		w.Write(bytes.Repeat([]byte("x"), 1<<20))
		w.(http.Flusher).Flush()
		select { // then stall
		case <-r.Context().Done():
			upstreamGaveUp <- struct{}{}
		case <-time.After(30 * time.Second):
		}
	})
	e := hubUpstream(t, h, func(_ *env, o *Options, _ *gateway.Config) { o.IdleTimeout = 300 * time.Millisecond })
	for _, h2 := range []bool{true, false} {
		c := &http.Client{Transport: e.clientTransport("alice", aliceToken, h2)}
		start := time.Now()
		resp, err := c.Get("https://index.docker.io/v2/library/alpine/blobs/sha256:" + strings.Repeat("ab", 32))
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil || n != 1<<20 {
			t.Fatalf("h2=%v: read %d bytes, err %v; want the first MiB, then an error", h2, n, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("h2=%v: the stalled transfer ended after %v, want about the idle timeout", h2, d)
		}
		select {
		case <-upstreamGaveUp:
		case <-time.After(5 * time.Second):
			t.Fatalf("h2=%v: the upstream request was not cancelled", h2)
		}
	}
	if v := e.metric(t, "regward_gateway_inspect_upstream_errors_total", "stage", "body"); v == 0 {
		t.Errorf("the broken transfers were not counted as upstream errors")
	}
}

func TestDrainLetsTransfersFinish(t *testing.T) {
	const size = 8 << 20
	started := make(chan struct{}, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		started <- struct{}{}
		chunk := bytes.Repeat([]byte("y"), 256<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond) // about 0.6 s in all
		}
	})
	e := hubUpstream(t, h)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, h2 := range []bool{true, false} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: e.clientTransport("alice", aliceToken, h2)}
			resp, err := c.Get("https://index.docker.io/v2/library/alpine/blobs/sha256:" + strings.Repeat("cd", 32))
			if err != nil {
				errs <- err
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size {
				errs <- fmt.Errorf("h2=%v: read %d of %d bytes: %v", h2, n, size, err)
			}
		}()
	}
	<-started
	<-started
	e.in.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.gw.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStalledClientIsEnded(t *testing.T) {
	upstreamDone := make(chan error, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(blobSize))
		_, err := io.Copy(w, &patternReader{n: blobSize})
		upstreamDone <- err
	})
	e := hubUpstream(t, h, func(_ *env, o *Options, _ *gateway.Config) { o.IdleTimeout = 300 * time.Millisecond })
	for _, h2 := range []bool{true, false} {
		c := &http.Client{Transport: e.clientTransport("alice", aliceToken, h2)}
		resp, err := c.Get("https://index.docker.io/v2/library/alpine/blobs/sha256:" + strings.Repeat("ef", 32))
		if err != nil {
			t.Fatal(err)
		}
		// Read a little, then stop reading: the gateway's writes block
		// once the buffers on the way are full.
		if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-upstreamDone:
			if err == nil {
				t.Errorf("h2=%v: the upstream sent the whole blob to a client that stopped reading", h2)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("h2=%v: the transfer to a stalled client was not ended", h2)
		}
		resp.Body.Close()
	}
}
