// Package agent is regward's gateway running on a developer machine for the
// signed-in user, like Docker Desktop's internal proxy: clients on the
// machine use it as their proxy without credentials, and it enforces the
// policy of the user's org from a snapshot it follows live and keeps on
// disk, so that it goes on enforcing while the control plane is out of
// reach (until the snapshot's TTL).
//
// It reads the saved sign-in and registry.json (package client) and
// reloads when either changes or when `regward login`/`logout` tell it to
// through its loopback control endpoint. Signed out, or signed in to an org
// registry.json does not allow, it refuses every request with the sign-in
// reason (407).
//
// agent knows client, gateway and policy. It must never import the control
// plane, a store backend, the console or cmd.
package agent
