// Package storetest is the conformance suite for store.Store: every backend
// (store/sqlite, store/postgres) runs Run unchanged from its own tests, so the
// contract in package store is checked the same way everywhere.
//
// It imports store and policy (types only) and the testing libraries. It must
// never import a backend package, a server package or cmd: a backend proves
// itself against the suite, not the other way round.
package storetest
