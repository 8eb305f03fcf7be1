package main

import "github.com/spf13/cobra"

// clientCommands are the developer-machine commands.
func clientCommands() []*cobra.Command {
	return nil
}
