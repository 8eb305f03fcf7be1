// Command apibench measures regward's control plane, on SQLite and on a
// real PostgreSQL 15, one backend after the other, on loopback only:
//
//	go run ./bench/apibench [-backends sqlite,postgres] [-clients 64] [-duration 5s] [-applies 200] [-markdown]
//
// For each backend it starts `regward serve --no-gateway` as a separate
// process (PostgreSQL through internal/pgtest, a throw-away server of its
// own; pgtest runs it with fsync off, which the output states, so its
// Save & Apply figures include no disk flush) and measures:
//
//   - policy-304: GET /api/v1/orgs/acme/policy with a matching
//     If-None-Match, the request every polling gateway and agent makes, from
//     -clients concurrent keep-alive connections for -duration; requests per
//     second, latency, and the server's CPU time per request (from
//     /proc/PID/stat) next to the load generator's own.
//   - apply: -applies sequential Save & Apply (PUT .../policy with If-Match);
//     latency p50/p99/max.
//   - fanout: -longpolls gateways waiting in GET .../snapshot?after=V&wait=30s
//     when one Save & Apply is made; time until the last of them has the new
//     version.
//
// It prints one line per scenario and backend. Every loop is bounded in
// count and time, it touches nothing but 127.0.0.1, and it stops every
// process it started.
//
// It is a tool, not a library: nothing imports it. The command measures
// regward only as a separate process through its command line and API; its
// in-process benchmark (go test -bench . -cpuprofile) exists to profile the
// same request inside one process.
package main
