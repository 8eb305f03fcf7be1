// Command gwmain runs regward's gateway engine alone, with a static policy
// from a file and anonymous clients only, taking the same flags as
// `regward gateway` (--proxy-listen, --policy-file, --org, --allow-anonymous).
// proxybench measures it as a separate process when cmd/regward has no
// gateway command yet.
//
// It is a benchmark fixture: nothing imports it, and it must not import the
// control plane or a store: the gateway engine alone is what it measures.
package main
