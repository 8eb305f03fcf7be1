// Package e2e holds regward's end-to-end tests: the gateway engine driven
// by real OCI clients (a private dockerd, skopeo, podman) against a real
// registry on 127.0.0.1, with made-up registry names that only the gateway
// resolves.
//
// It contains tests only. Nothing may import it, and it must not reach into
// a package's internals beyond its exported API: these tests see regward as
// its users' clients do.
package e2e
