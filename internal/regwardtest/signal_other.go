//go:build !unix

package regwardtest

import "os"

// sigTerm is the polite stop where there is no SIGTERM to send.
var sigTerm = os.Interrupt
