package controlplane

import (
	"context"
	"errors"
	"net/http"

	"github.com/regward/regward/internal/store"
)

type gatewayAuthRequest struct {
	Username string `json:"username"`
	Token    string `json:"token"`
}

type gatewayAuthResponse struct {
	Username string     `json:"username"`
	Org      string     `json:"org"`
	Role     store.Role `json:"role"`
}

func requireGateway(p Principal) error {
	if p.Kind != store.TokenGateway {
		return errForbidden("this endpoint is for gateway tokens")
	}
	return nil
}

// handleGatewayAuthenticate lets a standalone gateway check a proxy client's
// user and token without database access of its own.
func (s *Server) handleGatewayAuthenticate(w http.ResponseWriter, r *http.Request) {
	gw, _ := principalFrom(r.Context())
	if err := requireGateway(gw); err != nil {
		writeError(w, err)
		return
	}
	var req gatewayAuthRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	p, err := s.AuthenticateToken(r.Context(), req.Token)
	if err != nil {
		if errors.Is(err, errBadToken) {
			writeError(w, errUnauthorized(err.Error()))
			return
		}
		s.log.Error("gateway authenticate", "err", err)
		writeError(w, err)
		return
	}
	if p.Username != req.Username || p.Kind != store.TokenPersonal {
		writeError(w, errUnauthorized(errBadToken.Error()))
		return
	}
	writeJSON(w, http.StatusOK, gatewayAuthResponse{Username: p.Username, Org: p.Org, Role: p.Role})
}

type gatewayDecisions struct {
	Decisions []store.DecisionRecord `json:"decisions"`
}

// maxDecisionBatch bounds one upload from a gateway.
const maxDecisionBatch = 5000

func (s *Server) handleGatewayDecisions(w http.ResponseWriter, r *http.Request) {
	gw, _ := principalFrom(r.Context())
	if err := requireGateway(gw); err != nil {
		writeError(w, err)
		return
	}
	var req gatewayDecisions
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Decisions) > maxDecisionBatch {
		writeError(w, errBadRequest("at most 5000 decisions per request"))
		return
	}
	for i := range req.Decisions {
		req.Decisions[i].ID = 0
	}
	if err := s.store.AppendDecisions(r.Context(), req.Decisions); err != nil {
		s.log.Error("store gateway decisions", "err", err, "count", len(req.Decisions))
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// RecordDecisions stores decisions from the embedded gateway.
func (s *Server) RecordDecisions(ctx context.Context, ds []store.DecisionRecord) error {
	return s.store.AppendDecisions(ctx, ds)
}
