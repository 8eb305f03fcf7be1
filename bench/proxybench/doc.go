// Command proxybench measures regward's gateway against Squid and tinyproxy
// and against the direct path, on loopback only:
//
//	go run ./bench/proxybench [-only regward,squid,tinyproxy] [-size 512MiB] [-markdown]
//
// It starts a TLS origin in process (it serves N bytes generated on the
// fly, and a small GET), each proxy as a separate process with a one-host
// allowlist (the origin, 127.0.0.1:PORT, so no proxy resolves names), and
// measures four scenarios: tunnel throughput through CONNECT+TLS, denied
// CONNECTs per second, allowed CONNECT+TLS+GET latency, and memory per idle
// tunnel. Every loop is bounded in count and time; it touches nothing but
// 127.0.0.1 and stops every process it started.
//
// It is a tool, not a library: nothing imports it. It imports only
// registrytest (for a throw-away CA); it must never import the gateway or
// policy packages: it measures regward as a separate process through its
// command line and policy file, like the other proxies.
package main
