package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// AgentKeyHeader carries the agent's control key: only someone who can read
// the state file (mode 0600, the signed-in user) may talk to the agent.
const AgentKeyHeader = "Regward-Agent-Key"

// AgentState is what a running agent publishes next to the session file so
// that login, logout and status can find it.
type AgentState struct {
	PID       int       `json:"pid"`
	Listen    string    `json:"listen"`  // the proxy address
	Control   string    `json:"control"` // 127.0.0.1:PORT of the control endpoint
	Key       string    `json:"key"`
	StartedAt time.Time `json:"startedAt"`
	// CAFile is the agent's own CA certificate, which clients trust for the
	// registries the agent inspects ("" when it inspects nothing).
	CAFile string `json:"caFile,omitempty"`
}

// AgentStatePath is agent.json beside the session file.
func AgentStatePath(sessionPath string) (string, error) {
	if sessionPath == "" {
		var err error
		if sessionPath, err = SessionPath(); err != nil {
			return "", err
		}
	}
	return filepath.Join(filepath.Dir(sessionPath), "agent.json"), nil
}

// WriteAgentState publishes the agent's state (mode 0600).
func WriteAgentState(path string, s AgentState) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(data, '\n'), 0o600)
}

// ReadAgentState reads the state file; a missing one satisfies
// errors.Is(err, os.ErrNotExist).
func ReadAgentState(path string) (AgentState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return AgentState{}, err
	}
	var s AgentState
	if err := json.Unmarshal(data, &s); err != nil {
		return AgentState{}, fmt.Errorf("agent state %s is damaged: %w", path, err)
	}
	if s.Control == "" || s.Key == "" {
		return AgentState{}, fmt.Errorf("agent state %s lacks the control address or key", path)
	}
	return s, nil
}

// Agent states, as AgentReport.State.
const (
	AgentEnforcing = "enforcing" // a policy is known and enforced
	AgentSignedOut = "signed-out"
	AgentNoPolicy  = "no-policy" // signed in, no snapshot yet: traffic is refused
	AgentExpired   = "expired"   // the cached snapshot is older than the TTL: refused
)

// AgentReport is a running agent's own account of what it enforces.
type AgentReport struct {
	State           string    `json:"state"`
	Reason          string    `json:"reason,omitempty"` // why traffic is refused, when it is
	Server          string    `json:"server,omitempty"`
	User            string    `json:"user,omitempty"`
	Org             string    `json:"org,omitempty"`
	PolicyVersion   int64     `json:"policyVersion,omitempty"`
	PolicyFetchedAt time.Time `json:"policyFetchedAt,omitzero"`
	PolicyExpiresAt time.Time `json:"policyExpiresAt,omitzero"`
	Listen          string    `json:"listen"`
	Upstream        string    `json:"upstream,omitempty"`
	Enforced        bool      `json:"registryJSONEnforced"`
	PID             int       `json:"pid"`
	StartedAt       time.Time `json:"startedAt"`
}

// AgentControl talks to a running agent's control endpoint.
type AgentControl struct {
	State AgentState
	HTTP  *http.Client
}

// FindAgent reads the state file beside sessionPath ("" for the default).
// No state file means no agent: (nil, nil).
func FindAgent(sessionPath string) (*AgentControl, error) {
	p, err := AgentStatePath(sessionPath)
	if err != nil {
		return nil, err
	}
	s, err := ReadAgentState(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &AgentControl{State: s}, nil
}

// Status asks the agent what it enforces.
func (c *AgentControl) Status(ctx context.Context) (AgentReport, error) {
	return c.call(ctx, http.MethodGet, "/status")
}

// Reload tells the agent to read the session and refetch the policy now;
// it answers once it has.
func (c *AgentControl) Reload(ctx context.Context) (AgentReport, error) {
	return c.call(ctx, http.MethodPost, "/reload")
}

func (c *AgentControl) call(ctx context.Context, method, path string) (AgentReport, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.State.Control+path, nil)
	if err != nil {
		return AgentReport{}, err
	}
	req.Header.Set(AgentKeyHeader, c.State.Key)
	resp, err := hc.Do(req)
	if err != nil {
		return AgentReport{}, fmt.Errorf("agent (pid %d) does not answer on %s: %w", c.State.PID, c.State.Control, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return AgentReport{}, fmt.Errorf("agent %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return AgentReport{}, fmt.Errorf("agent %s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	var r AgentReport
	if err := json.Unmarshal(data, &r); err != nil {
		return AgentReport{}, fmt.Errorf("agent %s: decode answer: %w", path, err)
	}
	return r, nil
}
