// Command regward is the single binary of regward: the control plane, the
// gateway, the developer agent and the client commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit code other than 1 (check exits 1 on a denial
// and 2 on an error).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintln(os.Stderr, "regward:", ee.err)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "regward:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "regward",
		Short:         "Registry access management for every OCI client",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newServeCmd(), newGatewayCmd(), newPolicyCmd())
	root.AddCommand(clientCommands()...)
	return root
}

// withConfig adds --config and fills unset flags from REGWARD_* variables
// and the config file before the command runs.
func withConfig(cmd *cobra.Command) *cobra.Command {
	var file string
	cmd.Flags().StringVar(&file, "config", "", "YAML file of flag values (keys are flag names)")
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if file == "" {
			if v, ok := os.LookupEnv(config.EnvName("config")); ok {
				file = v
			}
		}
		if err := config.Apply(c.Flags(), file, nil, "config"); err != nil {
			return err
		}
		return run(c, args)
	}
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
