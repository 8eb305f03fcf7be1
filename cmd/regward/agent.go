package main

import (
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/regward/regward/internal/agent"
)

type agentFlags struct {
	listen, registryJSON, logLevel, logFormat string
	resolve                                   []string
	ttl                                       time.Duration
	upstream                                  string
	upstreamCA                                []string
}

func newAgentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the gateway on this machine for the signed-in user",
		Long: `Run the gateway on this machine for the signed-in user: point docker,
podman, containerd or buildkit at it (regward setup prints how) and it
enforces your organization's policy, following changes live and keeping the
policy on disk so that it goes on enforcing while the control plane is out of
reach, for --policy-ttl at most.

Clients need no credentials: the agent listens on loopback and acts for the
signed-in user. Signed out, it refuses all traffic with "sign in to your
organization: run ` + "`regward login`" + `".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(f.logLevel, f.logFormat)
			if err != nil {
				return err
			}
			resolve, err := (&gatewayFlags{resolve: f.resolve}).resolveMap()
			if err != nil {
				return err
			}
			var upstream *url.URL
			if f.upstream != "" {
				if upstream, err = url.Parse(f.upstream); err != nil {
					return fmt.Errorf("--upstream-gateway %q: %w", f.upstream, err)
				}
			}
			roots, err := (&gatewayFlags{upstreamCA: f.upstreamCA}).upstreamRoots()
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Config{
				UpstreamRoots: roots,
				Listen:        f.listen, RegistryJSON: f.registryJSON, TTL: f.ttl, Resolve: resolve, Logger: log,
				UpstreamGateway: upstream,
			})
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", agent.DefaultListen, "proxy address (loopback only)")
	fl.DurationVar(&f.ttl, "policy-ttl", agent.DefaultTTL, "how long the cached policy is enforced while the control plane is out of reach")
	fl.StringArrayVar(&f.resolve, "resolve", nil, "NAME=IP:PORT: dial IP:PORT for NAME instead of resolving it (repeatable)")
	fl.StringArrayVar(&f.upstreamCA, "upstream-ca", nil, "extra CA (PEM file) trusted for registries' certificates when inspecting (repeatable)")
	fl.StringVar(&f.upstream, "upstream-gateway", "", "chain allowed requests to this central gateway (http[s]://host:port); your sign-in is its credential")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	registryJSONFlag(cmd, &f.registryJSON)
	return withConfig(cmd)
}
