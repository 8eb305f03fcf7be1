package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/regward/regward/internal/client"
	"github.com/regward/regward/internal/policy"
)

// apiFlags are the connection flags of commands that talk to the API.
type apiFlags struct {
	server, token, org string
}

func (a *apiFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.server, "server", "", "control plane URL, e.g. http://127.0.0.1:8080 (REGWARD_SERVER)")
	cmd.Flags().StringVar(&a.token, "token", "", "access token (REGWARD_TOKEN); never put it in shell history, prefer the variable")
	cmd.Flags().StringVar(&a.org, "org", "", "organization (REGWARD_ORG; default: the token's)")
}

// client returns an API client, filling gaps from the saved sign-in.
func (a *apiFlags) client() (*client.API, string, error) {
	server, token, org := a.server, a.token, a.org
	if s, err := client.LoadSession(""); err == nil {
		if server == "" {
			server = s.Server
		}
		if token == "" && (a.server == "" || a.server == s.Server) {
			token = s.Token
		}
		if org == "" {
			org = s.Org
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	if server == "" {
		return nil, "", errors.New("no server: pass --server or set REGWARD_SERVER, or run `regward login`")
	}
	if token == "" {
		return nil, "", errors.New("no access token: set REGWARD_TOKEN or run `regward login`")
	}
	return &client.API{Server: server, Token: token}, org, nil
}

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Read or apply an organization's policy"}
	cmd.AddCommand(newPolicyGetCmd(), newPolicyApplyCmd())
	return cmd
}

func newPolicyGetCmd() *cobra.Command {
	var a apiFlags
	var output string
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print the current policy (YAML by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, org, err := a.client()
			if err != nil {
				return err
			}
			if org, err = resolveOrg(cmd, api, org); err != nil {
				return err
			}
			p, v, err := api.GetPolicy(cmd.Context(), org)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "# organization %s, policy version %d\n", org, v)
			return writePolicy(cmd.OutOrStdout(), p, output)
		},
	}
	a.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "yaml or json")
	return withConfig(cmd)
}

func writePolicy(w io.Writer, p policy.Policy, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(p); err != nil {
			return err
		}
		return enc.Close()
	}
	return fmt.Errorf("--output %q: use yaml or json", format)
}

func newPolicyApplyCmd() *cobra.Command {
	var a apiFlags
	var file string
	var dry bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Save & Apply a policy file (YAML or JSON); prints what changes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("name the policy file with -f FILE (- for standard input)")
			}
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 8<<20))
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read policy file: %w", err)
			}
			p, err := policy.Decode(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			api, org, err := a.client()
			if err != nil {
				return err
			}
			if p.Org != "" && org != "" && a.org != "" && p.Org != org {
				return fmt.Errorf("%s is the policy of organization %q, but --org says %q", file, p.Org, org)
			}
			if p.Org != "" {
				org = p.Org
			}
			if org, err = resolveOrg(cmd, api, org); err != nil {
				return err
			}
			res, err := api.PutPolicy(cmd.Context(), org, p, 0, dry)
			if err != nil {
				return err
			}
			printChanges(cmd.OutOrStdout(), res.Changes)
			if dry {
				fmt.Fprintf(cmd.OutOrStdout(), "dry run: nothing applied (organization %s stays at version %d)\n", org, res.Version)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "applied: organization %s is now at policy version %d\n", org, res.Version)
			}
			return nil
		},
	}
	a.register(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy file (YAML or JSON; - for standard input)")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "validate and show the changes without applying them")
	return withConfig(cmd)
}

func printChanges(w io.Writer, changes []policy.Change) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "no changes")
		return
	}
	for _, c := range changes {
		switch {
		case c.Before == nil:
			fmt.Fprintf(w, "+ %s: %s\n", c.Path, compact(c.After))
		case c.After == nil:
			fmt.Fprintf(w, "- %s: %s\n", c.Path, compact(c.Before))
		default:
			fmt.Fprintf(w, "~ %s: %s -> %s\n", c.Path, compact(c.Before), compact(c.After))
		}
	}
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// resolveOrg uses the token's org when none was named.
func resolveOrg(cmd *cobra.Command, api *client.API, org string) (string, error) {
	if org != "" {
		return org, nil
	}
	who, err := api.Whoami(cmd.Context())
	if err != nil {
		return "", err
	}
	if who.Org == "" {
		return "", errors.New("this token is not tied to an organization: pass --org")
	}
	return who.Org, nil
}
