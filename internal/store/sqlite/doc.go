// Package sqlite is the embedded store.Store: one database file in the data
// directory, nothing to install. It uses modernc.org/sqlite (pure Go) in WAL
// mode, sends every write through a single connection so that concurrent
// writers queue instead of failing with SQLITE_BUSY, reads through a pool of
// read-only connections, and applies its embedded goose migrations at Open.
//
// It imports store and policy (types only, persisted as JSON). It must never
// import a server package (controlplane, gateway, console, agent) or cmd.
package sqlite
