package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// TerminalPrompter asks on a terminal: the username with echo, the
// password without. PasswordFrom, when set, is read instead of asking for
// the password (--password-stdin).
type TerminalPrompter struct {
	In           *os.File
	Out          io.Writer
	PasswordFrom io.Reader
	// Interactive reports whether In is a terminal that can be asked.
	Interactive bool

	lines *bufio.Reader
}

// NewTerminalPrompter asks on stdin/stderr; passwordStdin reads the
// password from stdin instead.
func NewTerminalPrompter(in *os.File, out io.Writer, passwordStdin bool) *TerminalPrompter {
	p := &TerminalPrompter{In: in, Out: out, Interactive: term.IsTerminal(int(in.Fd()))}
	if passwordStdin {
		p.PasswordFrom = in
	}
	return p
}

// Username reads one line from the terminal.
func (p *TerminalPrompter) Username() (string, error) {
	if !p.Interactive || p.PasswordFrom != nil {
		return "", errors.New("name the user with --username")
	}
	fmt.Fprint(p.Out, "Username: ")
	if p.lines == nil {
		p.lines = bufio.NewReader(p.In)
	}
	line, err := p.lines.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read username: %w", err)
	}
	return strings.TrimSpace(line), nil
}

// Password reads the password without echo, or from PasswordFrom.
func (p *TerminalPrompter) Password(username string) (string, error) {
	if p.PasswordFrom != nil {
		return ReadPasswordStdin(p.PasswordFrom)
	}
	if !p.Interactive {
		return "", errors.New("standard input is not a terminal, so the password cannot be asked: pass it on standard input with --password-stdin")
	}
	fmt.Fprintf(p.Out, "Password for %s: ", username)
	pw, err := term.ReadPassword(int(p.In.Fd()))
	fmt.Fprintln(p.Out) // the user's Enter was not echoed either
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(pw), nil
}

// ReadPasswordStdin reads a password piped in: the first line, without its
// line ending (as `docker login --password-stdin` does).
func ReadPasswordStdin(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, 4097))
	if err != nil {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	if len(data) > 4096 {
		return "", errors.New("the password on standard input is longer than 4096 bytes")
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return "", errors.New("no password on standard input")
	}
	return string(line), nil
}
