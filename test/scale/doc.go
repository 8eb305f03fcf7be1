// Package scale holds regward's multi-process tests of a scaled-out
// installation: several `regward serve --database postgres://...` replicas
// on one real PostgreSQL 15, standalone `regward gateway` processes
// following them, and a real client (skopeo) pulling through a gateway from
// a real registry.
//
// The tests build the regward binary once, start every process on a free
// 127.0.0.1 port, show a process's output when a test fails, and kill every
// process they started when the test ends. They skip, saying why, when
// PostgreSQL, skopeo or the gateway command is missing, except with
// CI=true, where they fail.
//
// It contains tests only. Nothing may import it, and it drives regward only
// through its command line and HTTP API, as an operator's scripts do.
package scale
