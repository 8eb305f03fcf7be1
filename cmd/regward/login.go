package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/client"
)

func newLoginCmd() *cobra.Command {
	var o client.LoginOptions
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in to an organization (honours registry.json) and fetch its policy",
		Long: `Sign in to one organization with your username and password. The password is
asked without echo, or read from standard input with --password-stdin. The
access token is saved in your config directory (mode 0600), the org's policy
is fetched at once, and a running agent reloads.

When registry.json (` + client.DefaultRegistryJSONPath() + `) lists
allowedOrgs, only those organizations can be signed in to.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Ask = client.NewTerminalPrompter(os.Stdin, cmd.ErrOrStderr(), passwordStdin)
			res, err := client.Login(cmd.Context(), o)
			printWarnings(cmd.ErrOrStderr(), res.Warnings)
			if err != nil {
				return err
			}
			printLogin(cmd.OutOrStdout(), cmd.ErrOrStderr(), res)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Server, "server", "", "control plane URL, e.g. https://regward.example.com (default: the last sign-in's)")
	fl.StringVar(&o.Org, "org", "", "organization to sign in to (default: the only one registry.json allows, or the last)")
	fl.StringVar(&o.Username, "username", "", "your username (asked when not given)")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	registryJSONFlag(cmd, &o.RegistryJSON)
	return withConfig(cmd)
}

func printWarnings(w io.Writer, ws []string) {
	for _, s := range ws {
		fmt.Fprintln(w, "warning:", s)
	}
}

func printLogin(out, errw io.Writer, res client.LoginResult) {
	s := res.Session
	fmt.Fprintf(out, "Signed in to organization %s as %s (%s) on %s.\n", s.Org, s.Username, s.Role, s.Server)
	if res.ReplaceErr != nil {
		fmt.Fprintf(errw, "warning: the previous sign-in's token %s could not be revoked: %v\n", res.Replaced, res.ReplaceErr)
	}
	if res.Policy != nil {
		fmt.Fprintf(out, "Policy version %d of %s fetched.\n", res.Policy.Snapshot.Version, s.Org)
	} else {
		fmt.Fprintf(errw, "warning: the policy could not be fetched now (%v); the agent fetches it when it can\n", res.PolicyErr)
	}
	switch {
	case res.AgentErr != nil:
		fmt.Fprintf(errw, "warning: the agent could not be told to reload (%v); it notices the new sign-in within a few seconds\n", res.AgentErr)
	case res.Agent != nil:
		fmt.Fprintf(out, "The agent on %s reloaded: %s.\n", res.Agent.Listen, agentSummary(*res.Agent))
	}
}

func agentSummary(r client.AgentReport) string {
	if r.State == client.AgentEnforcing {
		return fmt.Sprintf("enforcing policy version %d of %s for %s", r.PolicyVersion, r.Org, r.User)
	}
	return r.State + ": " + r.Reason
}

func newLogoutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the saved sign-in on the server and delete it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := client.Logout(cmd.Context(), "", client.SnapshotCache{}, nil)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if res.Session.Server != "" {
				fmt.Fprintf(out, "Signed out of organization %s (%s) on %s.\n", res.Session.Org, res.Session.Username, res.Session.Server)
			} else {
				fmt.Fprintln(out, "Signed out.")
			}
			switch {
			case res.AgentErr != nil:
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the agent could not be told (%v); it notices within a few seconds\n", res.AgentErr)
			case res.Agent != nil:
				fmt.Fprintf(out, "The agent on %s now refuses traffic until you sign in again.\n", res.Agent.Listen)
			}
			if res.RevokeErr != nil {
				return fmt.Errorf("the sign-in is deleted here, but its token was not revoked on the server (%w); it stays valid until it is revoked in the console", res.RevokeErr)
			}
			return nil
		},
	}
	return withConfig(cmd)
}
