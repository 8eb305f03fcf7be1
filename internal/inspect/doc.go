// Package inspect is the gateway's TLS inspection: a gateway.Interceptor
// that takes over the CONNECT tunnels whose requests the policy has to see
// one by one (Docker Hub's registry API when image or namespace rules are
// on, and registries listed as pull-only). It ends the client's TLS with a
// leaf of the gateway CA for the CONNECT host, serves HTTP/1.1 and HTTP/2,
// decides every OCI distribution request with the org's current policy,
// and forwards the allowed ones to the CONNECT host over TLS verified
// against the upstream roots, streaming bodies both ways. Denials answer in
// the registry's own error format, so clients print the reason.
//
// inspect knows gateway (the Interceptor seam and its sinks), gwca, ociref,
// policy and store's record type. It must never import a store backend,
// the control plane, the console or cmd, and gateway must never import it:
// cmd wires it in.
package inspect
