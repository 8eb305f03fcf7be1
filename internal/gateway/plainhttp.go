package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regward/regward/internal/policy"
)

func (g *Gateway) newTransport() *http.Transport {
	if u := g.cfg.Upstream; u != nil {
		// Plain HTTP goes to the upstream gateway as a proxy request; the
		// transport sends u's userinfo as Proxy-Authorization.
		return &http.Transport{
			Proxy:                  http.ProxyURL(u),
			TLSClientConfig:        &tls.Config{RootCAs: g.cfg.UpstreamRoots, MinVersion: tls.VersionTLS12},
			MaxIdleConns:           100,
			IdleConnTimeout:        90 * time.Second,
			ResponseHeaderTimeout:  2 * time.Minute,
			DisableCompression:     true,
			MaxResponseHeaderBytes: 1 << 20,
		}
	}
	return &http.Transport{
		Proxy:                  nil, // never chain to the environment's proxy
		DialContext:            g.dialForTransport,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  2 * time.Minute,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true, // relay bodies as the origin sent them
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// parseProxyURL reads the absolute-form target of a plain-HTTP proxy
// request, returning the URL with its host normalized.
func parseProxyURL(target string) (*url.URL, string, uint16, error) {
	if strings.HasPrefix(target, "/") {
		return nil, "", 0, badRequest("this is a proxy: requests need an absolute URL such as http://HOST/PATH")
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, "", 0, badRequest("malformed request URL %s", strconv.Quote(truncate(target, 128)))
	}
	switch {
	case u.Scheme == "https":
		return nil, "", 0, badRequest("https:// URLs go through a CONNECT tunnel")
	case u.Scheme != "http":
		return nil, "", 0, badRequest("unsupported URL scheme %s", strconv.Quote(truncate(u.Scheme, 32)))
	case u.User != nil:
		return nil, "", 0, badRequest("request URL has user information; send credentials in Proxy-Authorization")
	case u.Host == "":
		return nil, "", 0, badRequest("request URL has no host")
	}
	host, port, err := policy.SplitHostPort(u.Host)
	if err != nil {
		return nil, "", 0, badRequest("request URL: %v", err)
	}
	hostOnly := host
	if strings.IndexByte(host, ':') >= 0 {
		hostOnly = "[" + host + "]"
	}
	if port == 0 {
		port = 80
		u.Host = hostOnly
	} else {
		u.Host = net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	return u, host, port, nil
}

// handleHTTP decides and forwards one plain-HTTP request. It reports
// whether the connection may carry another request.
func (g *Gateway) handleHTTP(cc *clientConn, br *bufio.Reader, head *requestHead) bool {
	started := time.Now()
	u, host, port, err := parseProxyURL(head.target)
	if err != nil {
		g.headError(cc, err)
		return false
	}
	g.m.httpRequests.Inc()
	ctx, cancel := g.requestContext()
	id, ok := g.identify(ctx, cc, br, head)
	if !ok {
		cancel()
		return false
	}
	d, _, _ := g.decide(ctx, id, head.method, host, port, started)
	cancel()
	if !d.Allowed {
		refuseRequest(cc, br, head, http.StatusForbidden, d.Reason, nil)
		return false
	}

	// net/http parses the head a second time, for its framing rules
	// (Content-Length versus Transfer-Encoding) and header map; the body
	// is read from the connection itself.
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head.raw)))
	if err != nil {
		refuse(cc, http.StatusBadRequest, "malformed request: "+err.Error(), nil)
		return false
	}
	body := requestBody(req, br)
	defer func() {
		// A read of the body still blocked in the transport ends now.
		cc.SetReadDeadline(time.Now())
		body.detach()
	}()
	if body.finished {
		req.Body = http.NoBody
	} else {
		req.Body = body
	}
	req.URL = u
	req.Host = u.Host // the host that was decided, never a different Host header
	req.RequestURI = ""
	req.Close = false
	removeHopHeaders(req.Header)

	resp, err := g.transport.RoundTrip(req.WithContext(g.ctx))
	if err != nil {
		var de *dialError
		if errors.As(err, &de) {
			g.dialFailed(cc, id, host, de)
		} else {
			g.dialFailed(cc, id, host, &dialError{http.StatusBadGateway, "cannot forward the request to " + policy.JoinHostPort(host, port), err})
		}
		return false
	}
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	keep := head.minor == 1 && !headerHasToken(head, "Connection", "close")
	if head.minor == 0 {
		resp.TransferEncoding = nil // an HTTP/1.0 client reads the body until we close
	}
	resp.ProtoMajor, resp.ProtoMinor = 1, head.minor
	resp.Close = !keep
	bw := bufio.NewWriterSize(cc, 4096)
	if err := resp.Write(bw); err != nil {
		return false
	}
	if err := bw.Flush(); err != nil {
		return false
	}
	if !keep {
		return false
	}
	// The transport may not have read all of the body (the origin answered
	// without it): then the connection cannot carry another request.
	cc.SetReadDeadline(time.Now())
	return body.detach()
}

// hopHeaders describe one connection, not the request: a proxy removes
// them (RFC 9110 section 7.6.1), Proxy-Authorization above all, which
// carries the client's token.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

func headerHasToken(h *requestHead, name, token string) bool {
	for _, v := range h.values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// connBody is a request body read from the client connection. The
// transport may go on reading a body after RoundTrip returned (when the
// origin answered early), so reads are serialized with detach, after which
// the connection's reader is the gateway's again.
type connBody struct {
	mu       sync.Mutex
	r        io.Reader // framing: chunked, length-limited, or nothing
	br       *bufio.Reader
	chunked  bool
	length   *io.LimitedReader
	finished bool
	detached bool
}

var errBodyDetached = errors.New("request body is no longer available")

func requestBody(req *http.Request, br *bufio.Reader) *connBody {
	switch {
	case len(req.TransferEncoding) > 0: // http.ReadRequest allows only "chunked"
		return &connBody{r: httputil.NewChunkedReader(br), br: br, chunked: true}
	case req.ContentLength > 0:
		lr := &io.LimitedReader{R: br, N: req.ContentLength}
		return &connBody{r: lr, br: br, length: lr}
	default:
		return &connBody{finished: true}
	}
}

func (b *connBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.detached:
		return 0, errBodyDetached
	case b.finished:
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		if b.chunked {
			// The chunked reader stops after the last chunk's size line;
			// the trailer section and its blank line are still to be read.
			if terr := skipTrailer(b.br); terr != nil {
				return n, terr
			}
		}
		b.finished = true
	}
	if b.length != nil && b.length.N == 0 {
		b.finished = true
	}
	return n, err
}

// Close does nothing: the connection is not the transport's to close.
func (b *connBody) Close() error { return nil }

// detach ends the transport's access to the body and reports whether all
// of it was read, so that the next request starts in the right place.
func (b *connBody) detach() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.detached = true
	return b.finished
}

// skipTrailer reads a chunked body's trailer section, which is dropped:
// trailers are hop-by-hop for this proxy.
func skipTrailer(br *bufio.Reader) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if err != nil {
			return fmt.Errorf("read chunked trailer: %w", err)
		}
		if total > 8<<10 {
			return errors.New("chunked trailer is too large")
		}
		if isBlankLine(line) {
			return nil
		}
	}
}
