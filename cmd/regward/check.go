package main

import (
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/client"
)

func newCheckCmd() *cobra.Command {
	var a apiFlags
	var o client.CheckOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check IMAGE...",
		Short: "Say whether each image may be pulled, and the rule that decided",
		Long: `Ask the control plane how the organization's policy treats each image, or,
when it cannot be reached, decide with the cached policy (and say so).

Exit status: 0 when every image is allowed, 1 when any is denied, 2 when any
could not be checked.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Images = args
			api, org, err := a.client()
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if org == "" {
				if org, err = resolveOrg(cmd, api, org); err != nil {
					return &exitError{code: 2, err: err}
				}
			}
			// Owners bypass image rules: a local decision needs the role,
			// which only the saved sign-in of this token knows.
			s, err := client.LoadSession("")
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return &exitError{code: 2, err: err}
			}
			o.Owner = err == nil && s.Token == api.Token && s.Org == org && s.Role == "owner"
			rep, err := client.Check(cmd.Context(), api, org, o)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return &exitError{code: 2, err: err}
				}
			} else {
				rep.Render(cmd.OutOrStdout(), time.Now())
			}
			if code := rep.ExitCode(); code != 0 {
				return &exitError{code: code, err: errors.New("")}
			}
			return nil
		},
	}
	a.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.User, "user", "", "check for another member (owners only; needs the server)")
	fl.StringVar(&o.Action, "action", "pull", "pull, push or delete")
	fl.BoolVar(&o.Offline, "offline", false, "decide with the cached policy without asking the server")
	fl.BoolVar(&asJSON, "json", false, "print the results as JSON")
	return withConfig(cmd)
}
