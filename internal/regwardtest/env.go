package regwardtest

import (
	"net"
	"os"
	"strings"
	"testing"
)

// Environ is this process's environment without REGWARD_* and proxy
// variables (HTTP_PROXY, no_proxy, ...), so that nothing of the host's
// set-up reaches a regward under test, with extra appended.
func Environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "REGWARD_") || strings.HasSuffix(strings.ToLower(k), "_proxy") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// FreeAddr returns a 127.0.0.1 address nothing listens on at the moment.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
