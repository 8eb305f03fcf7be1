// Package client is the developer side of regward: a typed client of the
// control plane's REST API, registry.json (which organizations this machine
// may sign in to), the saved sign-in and the cached policy snapshot, the
// logic of `regward login`, `logout`, `status`, `check` and `setup`, and
// the protocol of the local agent's control endpoint.
//
// It knows policy and ociref; it must never import a server package
// (controlplane, gateway, store backends, console), the agent or cmd.
package client
