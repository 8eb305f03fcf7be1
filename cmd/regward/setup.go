package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/client"
)

type setupFlags struct {
	gateway, noProxy, root, caFile string
	write, noCA, noRestart         bool
}

func newSetupCmd() *cobra.Command {
	var f setupFlags
	cmd := &cobra.Command{
		Use:   "setup " + strings.Join(client.SetupClients, "|"),
		Short: "Print (or, with --write, apply) the proxy and CA settings of a client",
		Long: `Print the exact settings that send a client's registry traffic through the
regward agent or gateway, and where the gateway CA goes when the gateway
inspects TLS. With --write, apply them: each replaced file is kept as
FILE.regward-backup-TIMESTAMP, and what changed and how to undo it is printed.
The daemon is restarted (skip with --no-restart).`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: client.SetupClients,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSetup(cmd, args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.gateway, "gateway", "", "proxy URL (default: the running agent, else http://127.0.0.1:3128)")
	fl.StringVar(&f.noProxy, "no-proxy", "", "hosts that bypass the gateway (replaces the client's list)")
	fl.BoolVar(&f.write, "write", false, "apply the settings (as root), keeping backups")
	fl.StringVar(&f.root, "root", "/", "file system root to read and write (tests, images being built)")
	fl.StringVar(&f.caFile, "ca-file", "", "the gateway CA (PEM) instead of fetching it")
	fl.BoolVar(&f.noCA, "no-ca", false, "the gateway does not inspect TLS: install no CA")
	fl.BoolVar(&f.noRestart, "no-restart", false, "with --write, do not run the commands that reload the daemon")
	return withConfig(cmd)
}

func runSetup(cmd *cobra.Command, target string, f setupFlags) error {
	o := client.SetupOptions{Client: target, Gateway: f.gateway, NoProxy: f.noProxy, Root: f.root}
	var agent *client.AgentControl
	if o.Gateway == "" {
		agent, _ = client.FindAgent("")
		o.Gateway = "http://127.0.0.1:3128"
		if agent != nil {
			o.Gateway = "http://" + agent.State.Listen
		}
	}
	// A loopback proxy without credentials is the local agent: it inspects
	// with a CA of its own, named in its state file.
	local := false
	if u, err := url.Parse(o.Gateway); err == nil && u.User == nil && client.IsLoopback(u.Hostname()) {
		local = f.caFile == "" && !f.noCA
	}
	var err error
	switch {
	case local && agent != nil && agent.State.CAFile != "":
		f.caFile = agent.State.CAFile
		if o.CA, o.CASource, err = setupCA(cmd.Context(), f); err != nil {
			return err
		}
		o.CASource = "the agent's own CA, " + agent.State.CAFile
	case !local:
		if o.CA, o.CASource, err = setupCA(cmd.Context(), f); err != nil {
			return err
		}
	}
	plan, err := client.PlanSetup(o)
	if err != nil {
		return err
	}
	if local && o.CA == nil {
		plan.Notes = append(plan.Notes, "No agent is running for this sign-in, so its CA is not known yet: start `regward agent` (it creates the CA) and run setup again, or name a CA with --ca-file. Without it, clients cannot pull from registries the agent must inspect (Docker Hub when image access is on, pull-only registries).")
	}
	redact := client.Redactor(o.Gateway)
	out := cmd.OutOrStdout()
	if !f.write {
		plan.Print(out, redact)
		fmt.Fprintf(out, "\nApply with: sudo regward setup %s --write\n", target)
		return nil
	}
	if f.root == "/" && os.Geteuid() != 0 {
		return fmt.Errorf("--write changes system files: run it as root (sudo regward setup %s --write)", target)
	}
	var run func([]string) error
	if f.root == "/" && !f.noRestart {
		run = func(c []string) error {
			fmt.Fprintf(cmd.ErrOrStderr(), "running %s\n", strings.Join(c, " "))
			x := exec.CommandContext(cmd.Context(), c[0], c[1:]...)
			x.Stdout, x.Stderr = cmd.ErrOrStderr(), cmd.ErrOrStderr()
			return x.Run()
		}
	}
	res, err := plan.Apply(f.root, time.Now(), run)
	res.Report(out, f.root)
	return err
}

// setupCA finds the CA the gateway signs inspected connections with: a
// file, or the installation's from the control plane.
func setupCA(ctx context.Context, f setupFlags) ([]byte, string, error) {
	switch {
	case f.noCA:
		return nil, "", nil
	case f.caFile != "":
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, "", fmt.Errorf("--ca-file: %w", err)
		}
		return pem, f.caFile, nil
	}
	s, err := client.LoadSession("")
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", errors.New("not signed in, so whether the gateway inspects TLS cannot be asked: run `regward login`, or pass --ca-file FILE or --no-ca" +
			" (under sudo, keep your sign-in with sudo --preserve-env=REGWARD_SESSION_FILE and REGWARD_SESSION_FILE=~/.config/regward/session.json)")
	}
	if err != nil {
		return nil, "", err
	}
	api := &client.API{Server: s.Server, Token: s.Token}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pem, err := api.GatewayCA(ctx, s.Org)
	if err != nil {
		return nil, "", fmt.Errorf("fetch the gateway CA: %w (or pass --ca-file FILE or --no-ca)", err)
	}
	return pem, s.Server + "/api/v1/orgs/" + s.Org + "/gateway-ca.pem", nil
}
