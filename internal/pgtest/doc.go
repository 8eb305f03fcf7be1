// Package pgtest runs a real PostgreSQL 15 server for tests: initdb and
// postgres from the Debian packages (/usr/lib/postgresql/15/bin, or
// $PGTEST_BINDIR), run as the "postgres" OS user when the tests run as root,
// in a throw-away directory, listening on a free 127.0.0.1 port. DSN gives
// each test a fresh database on one server shared by the test binary;
// Start gives multi-process tests a server of their own without a
// *testing.T.
//
// It is test support: production packages must never import it, and it
// must never import a regward package, so that any package's tests can.
package pgtest
