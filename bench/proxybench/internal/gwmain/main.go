package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/policy"
)

// staticPolicy serves one org's compiled policy, which never changes.
type staticPolicy struct {
	org string
	c   *policy.Compiled
}

func (s staticPolicy) Policy(_ context.Context, org string) (*policy.Compiled, int64, error) {
	if org != s.org {
		return nil, 0, fmt.Errorf("no policy for organization %q", org)
	}
	return s.c, 1, nil
}

// noUsers knows no one: every client is anonymous.
type noUsers struct{}

func (noUsers) Authenticate(context.Context, string, string) (gateway.Identity, error) {
	return gateway.Identity{}, gateway.ErrUnauthenticated
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gwmain:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "gateway" {
		return errors.New("usage: gwmain gateway --proxy-listen ADDR --policy-file FILE --org ORG [--allow-anonymous]")
	}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	listen := fs.String("proxy-listen", "127.0.0.1:3128", "address of the gateway (forward proxy)")
	policyFile := fs.String("policy-file", "", "policy file (JSON or YAML)")
	org := fs.String("org", "", "the organization whose policy the file holds")
	anon := fs.Bool("allow-anonymous", false, "let clients without credentials act as members of --org")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *policyFile == "" || *org == "" {
		return errors.New("--policy-file and --org are required")
	}
	data, err := os.ReadFile(*policyFile)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	p, err := policy.Decode(data)
	if err != nil {
		return fmt.Errorf("policy file %s: %w", *policyFile, err)
	}
	if p.Org != *org {
		return fmt.Errorf("policy file %s is for organization %q, not %q", *policyFile, p.Org, *org)
	}
	if err := p.Validate(policy.Limits{}); err != nil {
		return fmt.Errorf("policy file %s: %w", *policyFile, err)
	}
	c, err := policy.Compile(p, policy.DefaultCatalog())
	if err != nil {
		return fmt.Errorf("compile policy: %w", err)
	}
	gw, err := gateway.New(gateway.Config{
		Auth:           noUsers{},
		Policies:       staticPolicy{org: *org, c: c},
		AllowAnonymous: *anon,
		AnonymousOrg:   *org,
		Name:           "gwmain",
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gw.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
