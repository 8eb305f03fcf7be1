package main

import (
	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/client"
)

// clientCommands are the developer-machine commands.
func clientCommands() []*cobra.Command {
	return []*cobra.Command{
		newLoginCmd(), newLogoutCmd(), newStatusCmd(), newCheckCmd(), newAgentCmd(), newSetupCmd(),
	}
}

// registryJSONFlag registers --registry-json (REGWARD_REGISTRY_JSON through
// withConfig).
func registryJSONFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "registry-json", "", "registry.json that enforces sign-in (default "+client.DefaultRegistryJSONPath()+")")
}
