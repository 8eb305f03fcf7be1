// Package regwardtest builds the regward binary and runs it as a separate
// process for tests and benchmarks: on free 127.0.0.1 ports, with an
// environment from which the host's REGWARD_* and proxy variables are
// removed, its output kept (the last part of it) and shown when a test
// fails, and every process stopped when its test ends.
//
// It is test support: production packages must never import it, and it
// must never import a regward package, so that any package's tests and
// the benchmark commands can use it.
package regwardtest
