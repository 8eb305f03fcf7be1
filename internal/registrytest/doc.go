// Package registrytest runs a real OCI registry (go-containerregistry's
// pkg/registry, in process) over TLS on 127.0.0.1 for tests and benchmarks.
// It makes a throw-away certificate authority and a server certificate for
// made-up host names (allowed.test, registry-1.docker.io, ...), so that real
// clients can be pointed at the registry through a proxy that resolves those
// names to 127.0.0.1.
//
// It is test support: production packages must never import it, and it must
// never import a regward server package (gateway, controlplane, store
// backends) so that their tests can use it.
package registrytest
