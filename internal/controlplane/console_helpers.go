package controlplane

import "github.com/regward/regward/internal/policy"

// Read-only accessors for the admin console, which renders what the API
// enforces and so needs the same settings.

// MaxRegistries is the number of registry entries an org's policy may hold.
func (s *Server) MaxRegistries() int {
	if s.limits.MaxRegistries <= 0 {
		return policy.DefaultMaxRegistries
	}
	return s.limits.MaxRegistries
}

// GatewayCA returns the gateway CA certificate in PEM, or nil when TLS
// inspection is not set up.
func (s *Server) GatewayCA() []byte {
	if s.gatewayCA == nil {
		return nil
	}
	return s.gatewayCA()
}
