// Package gateway is regward's enforcement point: a forward HTTP proxy that
// answers CONNECT tunnels and absolute-form plain-HTTP requests, identifies
// the client by its Proxy-Authorization credential, decides each request
// with the org's compiled policy and records the decision.
//
// It also holds what a standalone gateway needs to run away from the
// database: a Follower that long-polls the control plane for policy
// snapshots and keeps the last one of each org on disk, a RemoteAuthenticator,
// a remote decision writer, and the Batcher that carries the decision log
// off the request path.
//
// gateway knows policy (decisions) and store (only its record types). It
// must never import a store backend (store/sqlite, store/postgres), the
// control plane, the console or cmd: the embedded gateway is wired to them
// from cmd through the Authenticator, PolicySource and DecisionSink
// interfaces, and a standalone gateway talks to the control plane over HTTP.
package gateway
