package controlplane

import (
	"errors"

	"github.com/regward/regward/internal/policy"
)

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

// IsBadToken reports whether err from AuthenticateToken means the token is
// unknown, revoked, expired or no longer tied to a membership, as opposed to
// a failure to check it.
func IsBadToken(err error) bool {
	return errors.Is(err, errBadToken)
}
