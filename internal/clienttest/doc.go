// Package clienttest drives real OCI clients for regward's end-to-end tests
// and benchmarks: a private dockerd (its own data root, socket and managed
// containerd), skopeo and podman, each pointed at a proxy through the
// standard HTTPS_PROXY environment and made to trust throw-away test CAs.
//
// When a client is missing or cannot start, the helpers skip the test with
// the reason, except under CI=true, where they fail it: in CI the
// real-client tests must run.
//
// It is test support: production packages must never import it, and it
// must never import a regward server package (gateway, controlplane, store
// backends), so that those packages' own tests can use it.
package clienttest
