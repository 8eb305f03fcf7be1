package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Reconnect backoff of a watcher whose connection failed. The ceiling is
// short because every second without LISTEN is a second of changes that
// only the resync after reconnecting will catch.
var (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// keepAlive is how long a watcher waits for a notification before it pings
// the server: a half-open connection (a firewall that dropped it) would
// otherwise wait forever.
var keepAlive = 30 * time.Second

// WatchPolicies reports every policy version change committed by any
// replica, as fn(org, version), from this goroutine, until ctx ends or the
// store is closed; it then returns the context's error. It holds one
// dedicated connection in LISTEN. Each time LISTEN is (re)established it
// calls resync, so that the caller re-reads PolicyVersions for changes
// made while it was not listening, including before the first LISTEN.
// Lost connections are retried with backoff, forever.
func (s *Store) WatchPolicies(ctx context.Context, fn func(org string, version int64), resync func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closed, cancel)
	defer stop()

	backoff := minBackoff
	for {
		listened, err := s.listenOnce(ctx, fn, resync)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if listened {
			backoff = minBackoff
		}
		slog.Warn("policy watch lost its database connection; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listenOnce connects, listens and delivers notifications until the
// connection fails. listened reports whether LISTEN was established.
func (s *Store) listenOnce(ctx context.Context, fn func(string, int64), resync func()) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.listen.Copy())
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx) // the connection is being dropped either way
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	resync()
	for {
		waitCtx, cancel := context.WithTimeout(ctx, keepAlive)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if err != nil && pgconn.Timeout(err) {
			// Quiet, not necessarily dead: a timed-out wait leaves the
			// connection usable, and a ping tells which it is.
			pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("ping: %w", err)
			}
			continue
		}
		if err != nil {
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		org, version, ok := parsePayload(n.Payload)
		if !ok {
			// Not ours to interpret: re-read everything rather than guess.
			resync()
			continue
		}
		fn(org, version)
	}
}

// parsePayload splits "org:version"; the version follows the last colon.
func parsePayload(p string) (org string, version int64, ok bool) {
	i := strings.LastIndexByte(p, ':')
	if i <= 0 {
		return "", 0, false
	}
	v, err := strconv.ParseInt(p[i+1:], 10, 64)
	if err != nil || v <= 0 {
		return "", 0, false
	}
	return p[:i], v, true
}
