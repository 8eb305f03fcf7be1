package controlplane

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/regward/regward/internal/policy"
)

// Problem is an RFC 9457 problem response; every API error is one.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail,omitempty"`
	Errors []policy.FieldError `json:"errors,omitempty"`
	// Version is the org's current policy version, on a 409 conflict.
	Version int64 `json:"version,omitempty"`

	header http.Header
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Detail
	}
	return p.Title
}

const problemBase = "https://regward.dev/problems/"

func problem(status int, kind, detail string) *Problem {
	return &Problem{Type: problemBase + kind, Title: http.StatusText(status), Status: status, Detail: detail}
}

func errBadRequest(detail string) *Problem {
	return problem(http.StatusBadRequest, "bad-request", detail)
}
func errNotFound(detail string) *Problem  { return problem(http.StatusNotFound, "not-found", detail) }
func errForbidden(detail string) *Problem { return problem(http.StatusForbidden, "forbidden", detail) }
func errConflict(detail string) *Problem  { return problem(http.StatusConflict, "conflict", detail) }

func errUnauthorized(detail string) *Problem {
	p := problem(http.StatusUnauthorized, "unauthorized", detail)
	p.header = http.Header{"Www-Authenticate": {`Bearer realm="regward"`}}
	return p
}

func errValidation(ve *policy.ValidationError) *Problem {
	p := problem(http.StatusUnprocessableEntity, "validation", "the policy has "+plural(len(ve.Errors), "problem"))
	p.Errors = ve.Errors
	return p
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// writeError renders any error at the edge: a *Problem as itself, a
// validation error as 422, and anything else as a 500 whose detail is not
// shown to the client (it is logged by the caller).
func writeError(w http.ResponseWriter, err error) {
	var p *Problem
	var ve *policy.ValidationError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &ve):
		p = errValidation(ve)
	default:
		p = problem(http.StatusInternalServerError, "internal", "internal error")
	}
	for k, v := range p.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
