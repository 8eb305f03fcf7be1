// Command inspectbench measures what TLS inspection costs, against the
// blind tunnel the gateway uses for other hosts, in one run and on
// loopback only:
//
//	go run ./bench/inspectbench [-size 512MiB] [-runs 3] [-conns 400] [-proto both] [-markdown]
//
// It starts, in one process, a TLS origin that answers both as
// registry-1.docker.io (inspected: image access is on) and as blind.test
// (an allowed registry that is tunnelled without inspection), serving a
// blob generated on the fly, and the gateway engine with the inspector
// (internal/inspect) in front of it. It then measures:
//
//   - throughput: one client pulls the blob through each path, in
//     interleaved rounds; the median round counts, and inspected must
//     reach at least 0.6 of blind. The heap growth during the inspected
//     transfers is reported too.
//   - handshakes: new connections (CONNECT, then the TLS handshake) one
//     after another, interleaved between the paths; for the inspected
//     host the first connection mints the leaf and later ones find it in
//     the cache, whose p99 may add at most 1 ms to the blind tunnel's.
//     Also the cost of minting a leaf and of a cache hit, measured on the
//     CA directly, and a new connection's first request (GET /v2/).
//
// Every loop is bounded in count and time. It is a tool, not a library:
// nothing imports it.
package main
