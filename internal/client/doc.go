// Package client is the developer-side of regward: a typed client of the
// control plane's REST API, registry.json, the saved sign-in, and client
// set-up. It knows policy; it must never import a server package or cmd.
package client
