package main

import (
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/client"
)

func newStatusCmd() *cobra.Command {
	var o client.StatusOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the sign-in, the cached policy, the agent and whether registry.json enforces sign-in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := client.Status(cmd.Context(), o)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			r.Render(cmd.OutOrStdout(), time.Now())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	registryJSONFlag(cmd, &o.RegistryJSON)
	return withConfig(cmd)
}
