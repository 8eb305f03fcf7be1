package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestMaxConns(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConns = 2 })
	a, b := e.dial(), e.dial()
	waitFor(t, "two connections", func() bool { return metricValue(t, e.gw.m.activeConns) == 2 })
	resp, _ := e.rawResponse("CONNECT allowed.test:443 HTTP/1.1\r\n\r\n")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Status != "503 gateway is at its connection limit; try again later" {
		t.Fatalf("third connection: %q", resp.Status)
	}
	if v := metricValue(t, e.gw.m.rejected); v != 1 {
		t.Errorf("rejected = %v", v)
	}
	a.Close()
	b.Close()
	waitFor(t, "connections to go", func() bool { return metricValue(t, e.gw.m.activeConns) == 0 })
	e.mustWork()
}

// echoServer accepts TCP connections, reads the ClientHello the tunnel
// forwards and then echoes.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echoTunnel opens a tunnel to echo.test through e and checks that it
// echoes.
func echoTunnel(t *testing.T, e *env) net.Conn {
	t.Helper()
	c := e.connectTunnel("echo.test:443")
	hello := clientHello(t, "echo.test")
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(hello))
	if _, err := io.ReadFull(c, back); err != nil {
		t.Fatalf("echo of the hello: %v", err)
	}
	return c
}

func echoEnv(t *testing.T, tweak func(*Config)) *env {
	addr := echoServer(t)
	e := newEnv(t, func(c *Config) {
		c.Resolve["echo.test"] = addr
		if tweak != nil {
			tweak(c)
		}
	})
	e.policies.set(testOrg, compileAllowing(t, testOrg, "echo.test", "allowed.test"))
	return e
}

func ping(c net.Conn, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(c, back); err != nil {
		return err
	}
	if string(back) != msg {
		return errors.New("echo garbled")
	}
	return nil
}

func TestIdleTimeout(t *testing.T) {
	e := echoEnv(t, func(c *Config) { c.IdleTimeout = 400 * time.Millisecond })
	idle := echoTunnel(t, e)
	busy := echoTunnel(t, e)
	start := time.Now()
	// The busy tunnel talks every 100ms for three idle timeouts.
	for time.Since(start) < 1200*time.Millisecond {
		if err := ping(busy, "ping"); err != nil {
			t.Fatalf("busy tunnel after %v: %v", time.Since(start), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The idle one was closed in the meantime: between 400 and 500ms.
	idle.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle tunnel: %v, want closed", err)
	}
	if err := ping(busy, "still there"); err != nil {
		t.Fatalf("busy tunnel: %v", err)
	}
}

func TestShutdownDrains(t *testing.T) {
	e := echoEnv(t, nil)
	busy := echoTunnel(t, e)
	quiet := echoTunnel(t, e)
	silent := e.dial() // connected, and no request yet
	waitFor(t, "three connections", func() bool { return metricValue(t, e.gw.m.activeConns) == 3 })

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.gw.Shutdown(ctx)
	}()
	waitFor(t, "listener to close", func() bool {
		c, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	// The busy tunnel keeps working through the drain while the quiet
	// one is closed like an idle keep-alive connection.
	for i := 0; i < 15; i++ {
		if err := ping(busy, "during drain"); err != nil {
			t.Fatalf("busy tunnel during drain (%v): %v", time.Since(start), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("connection without a request during drain: %v, want closed", err)
	}
	quiet.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := quiet.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("quiet tunnel during drain: %v, want closed", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a tunnel was busy", err)
	default:
	}
	busy.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last tunnel ended")
	}
	if err := <-e.served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	e.served <- http.ErrServerClosed // for the cleanup's check
}

func TestShutdownForcesAfterDeadline(t *testing.T) {
	e := echoEnv(t, nil)
	busy := echoTunnel(t, e)
	stop := make(chan struct{})
	go func() {
		// Keep the tunnel busy so that only the deadline ends it.
		for {
			select {
			case <-stop:
				return
			default:
			}
			if ping(busy, "x") != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := e.gw.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Shutdown took %v", took)
	}
	waitFor(t, "forced close", func() bool { return metricValue(t, e.gw.m.activeConns) == 0 })
	busy.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.Copy(io.Discard, busy); err != nil && !errors.Is(err, net.ErrClosed) {
		// EOF (nil here) or a reset: the gateway closed the tunnel.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("tunnel still open after forced shutdown")
		}
	}
}

// A keep-alive plain-HTTP connection waiting for its next request is
// closed by Shutdown at once.
func TestShutdownClosesIdleKeepAlive(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	br := bufio.NewReader(c)
	io.WriteString(c, "GET "+e.httpURL("plain.test")+"/ HTTP/1.1\r\nProxy-Authorization: "+basic("alice", aliceToken)+"\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain GET: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.gw.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Shutdown waited %v for an idle keep-alive connection", took)
	}
}
