// Package postgres is the store.Store for several control-plane replicas
// sharing one PostgreSQL database. It uses pgx (a pool for queries, one
// dedicated connection per policy watcher), applies its embedded goose
// migrations at Open under a PostgreSQL advisory lock so that replicas
// starting together do not race, and implements store.Watcher with
// LISTEN/NOTIFY: every policy version change is announced inside the
// transaction that makes it, so replicas hear of it only once it commits.
//
// It imports store and policy (types only, persisted as JSON). It must never
// import a server package (controlplane, gateway, console, agent) or cmd.
package postgres
