package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"
)

// RegistryJSONEnv overrides the platform path of registry.json, as the
// --registry-json flag does.
const RegistryJSONEnv = "REGWARD_REGISTRY_JSON"

// DefaultRegistryJSONPath is where Docker Desktop (and regward) look for
// registry.json on this platform.
func DefaultRegistryJSONPath() string {
	return registryJSONPathFor(runtime.GOOS)
}

func registryJSONPathFor(goos string) string {
	switch goos {
	case "darwin":
		return "/Library/Application Support/com.docker.docker/registry.json"
	case "windows":
		return `C:\ProgramData\DockerDesktop\registry.json`
	default:
		return "/usr/share/docker-desktop/registry/registry.json"
	}
}

// RegistryJSON is the content of registry.json: the organizations this
// machine may sign in to.
type RegistryJSON struct {
	AllowedOrgs []string `json:"allowedOrgs"`
}

// orgName is what an organization name may be (the control plane's rule).
var orgName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// maxRegistryJSON bounds the file; a real one is a few dozen bytes.
const maxRegistryJSON = 1 << 20

// RegistryJSONError is a problem in registry.json, placed by line and
// column (both from 1; column counts characters) and, when it concerns one,
// by field.
type RegistryJSONError struct {
	Line, Column int
	Field        string // e.g. "allowedOrgs[1]"; empty when not about a field
	Msg          string
}

func (e *RegistryJSONError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d, column %d: ", e.Line, e.Column)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ParseRegistryJSON reads registry.json strictly: UTF-8 without a byte
// order mark, one object with exactly the key "allowedOrgs", a non-empty
// list of distinct lowercase organization names, nothing after it. Anything
// else is an error that says what is wrong and where; nothing is guessed
// (a file that means to restrict sign-in must not be half-understood).
func ParseRegistryJSON(data []byte) (RegistryJSON, error) {
	p := rjParser{data: data}
	return p.parse()
}

type rjParser struct {
	data []byte
	dec  *json.Decoder
}

func (p *rjParser) errAt(off int, field, format string, args ...any) error {
	line, col := lineCol(p.data, off)
	return &RegistryJSONError{Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (p *rjParser) parse() (RegistryJSON, error) {
	var rj RegistryJSON
	switch {
	case len(p.data) > maxRegistryJSON:
		return rj, &RegistryJSONError{Msg: fmt.Sprintf("the file is %d bytes; a registry.json is at most %d", len(p.data), maxRegistryJSON)}
	case bytes.HasPrefix(p.data, []byte{0xEF, 0xBB, 0xBF}):
		return rj, p.errAt(0, "", "the file starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without BOM")
	case bytes.HasPrefix(p.data, []byte{0xFF, 0xFE}), bytes.HasPrefix(p.data, []byte{0xFE, 0xFF}):
		return rj, p.errAt(0, "", "the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8 without BOM")
	}
	if bad := firstInvalidUTF8(p.data); bad >= 0 {
		return rj, p.errAt(bad, "", "invalid UTF-8 (byte 0x%02X); save the file as UTF-8", p.data[bad])
	}
	if len(skipSpace(p.data, 0)) == 0 {
		return rj, &RegistryJSONError{Msg: `the file is empty; it must hold {"allowedOrgs":["your-org"]}`}
	}
	p.dec = json.NewDecoder(bytes.NewReader(p.data))
	p.dec.UseNumber()

	off, tok, err := p.next()
	if err != nil {
		return rj, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return rj, p.errAt(off, "", `want a JSON object such as {"allowedOrgs":["your-org"]}, found %s`, describe(tok))
	}
	seen := false
	for {
		off, tok, err := p.next()
		if err != nil {
			return rj, err
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			break
		}
		key, _ := tok.(string) // the decoder only yields strings as keys
		switch {
		case key == "allowedOrgs" && seen:
			return rj, p.errAt(off, "allowedOrgs", "the key appears twice; keep one list")
		case key == "allowedOrgs":
			seen = true
			if rj.AllowedOrgs, err = p.orgList(); err != nil {
				return rj, err
			}
		case strings.EqualFold(key, "allowedOrgs"):
			return rj, p.errAt(off, key, `unknown field %q; the key is "allowedOrgs" (keys are case-sensitive)`, key)
		default:
			return rj, p.errAt(off, key, `unknown field %q; registry.json holds only "allowedOrgs"`, key)
		}
	}
	end := int(p.dec.InputOffset())
	if rest := skipSpace(p.data, end); len(rest) > 0 {
		return rj, p.errAt(len(p.data)-len(rest), "", "unexpected data after the closing brace of the object")
	}
	if !seen {
		return rj, p.errAt(0, "allowedOrgs", `missing; the file must be {"allowedOrgs":["your-org"]}`)
	}
	return rj, nil
}

// orgList reads the value of allowedOrgs.
func (p *rjParser) orgList() ([]string, error) {
	off, tok, err := p.next()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, p.errAt(off, "allowedOrgs", "want a list of organization names such as [\"acme\"], found %s", describe(tok))
	}
	start := off
	orgs := []string{}
	where := map[string]int{}
	for i := 0; ; i++ {
		off, tok, err := p.next()
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			break
		}
		field := fmt.Sprintf("allowedOrgs[%d]", i)
		name, ok := tok.(string)
		if !ok {
			return nil, p.errAt(off, field, "want an organization name in quotes, found %s", describe(tok))
		}
		if err := checkOrgName(name); err != nil {
			return nil, p.errAt(off, field, "%s", err)
		}
		if j, dup := where[name]; dup {
			return nil, p.errAt(off, field, "%q is listed twice (also allowedOrgs[%d])", name, j)
		}
		where[name] = i
		orgs = append(orgs, name)
	}
	if len(orgs) == 0 {
		return nil, p.errAt(start, "allowedOrgs", "the list is empty; name at least one organization (delete the file to stop requiring sign-in)")
	}
	return orgs, nil
}

func checkOrgName(name string) error {
	switch {
	case orgName.MatchString(name):
		return nil
	case name == "":
		return errors.New("empty organization name")
	case orgName.MatchString(strings.ToLower(name)):
		return fmt.Errorf("%q has uppercase letters; organization names are lowercase and compared case-sensitively", name)
	default:
		return fmt.Errorf("%q is not an organization name (1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit)", name)
	}
}

// next returns the next token and the offset where it starts.
func (p *rjParser) next() (int, json.Token, error) {
	off := len(p.data) - len(skipSeparators(p.data, int(p.dec.InputOffset())))
	tok, err := p.dec.Token()
	if err == nil {
		return off, tok, nil
	}
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return off, nil, p.errAt(len(p.data), "", "the file ends before the JSON is complete")
	case errors.As(err, &se):
		return off, nil, p.errAt(p.syntaxOffset(se), "", "not valid JSON: %s", strings.TrimPrefix(se.Error(), "json: "))
	}
	return off, nil, p.errAt(off, "", "not valid JSON: %v", err)
}

// syntaxOffset places a syntax error on the offending character. The
// decoder's Offset is sometimes that character, sometimes just before or
// past it, so look for the character its message names.
func (p *rjParser) syntaxOffset(se *json.SyntaxError) int {
	at := int(se.Offset)
	msg := se.Error()
	if i := strings.Index(msg, "invalid character '"); i >= 0 {
		rest := msg[i+len("invalid character "):]
		for n := 3; n <= len(rest) && n <= 8; n++ { // 'c' up to '\x01'
			c, err := strconv.Unquote(rest[:n])
			if err != nil {
				continue
			}
			// The offender is the first such character from just before
			// Offset: for a bad string literal, Offset is the string's start.
			from := max(at-1, 0)
			if from < len(p.data) {
				if j := bytes.Index(p.data[from:], []byte(c)); j >= 0 {
					return from + j
				}
			}
			break
		}
	}
	return min(max(at, 0), len(p.data))
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "a list"
		}
		if v == '{' {
			return "an object"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return fmt.Sprintf("the string %q", v)
	case json.Number:
		return "the number " + v.String()
	case bool:
		return fmt.Sprintf("%t", v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// skipSpace returns data[off:] without leading JSON white space.
func skipSpace(data []byte, off int) []byte {
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\n', '\r':
			off++
		default:
			return data[off:]
		}
	}
	return nil
}

// skipSeparators skips white space and the ',' and ':' the decoder consumes
// with the next token.
func skipSeparators(data []byte, off int) []byte {
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\n', '\r', ',', ':':
			off++
		default:
			return data[off:]
		}
	}
	return nil
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// lineCol turns a byte offset into a line and a column in characters.
func lineCol(data []byte, off int) (int, int) {
	if off > len(data) {
		off = len(data)
	}
	line, start := 1, 0
	for i := 0; i < off; i++ {
		if data[i] == '\n' {
			line++
			start = i + 1
		}
	}
	return line, utf8.RuneCount(data[start:off]) + 1
}

// Enforcement is what registry.json says about sign-in on this machine.
type Enforcement struct {
	Path        string   `json:"path"`
	Enforced    bool     `json:"enforced"` // the file exists and lists orgs
	AllowedOrgs []string `json:"allowedOrgs,omitempty"`
	// Warnings are problems that do not stop enforcement, such as a file
	// the user could edit.
	Warnings []string `json:"warnings,omitempty"`
}

// Allows reports whether sign-in to org is allowed on this machine.
func (e Enforcement) Allows(org string) bool {
	if !e.Enforced {
		return true
	}
	for _, o := range e.AllowedOrgs {
		if o == org {
			return true
		}
	}
	return false
}

// Refusal is the message for a sign-in to an org the file does not list.
func (e Enforcement) Refusal() string {
	return "this machine requires sign-in to one of: " + strings.Join(e.AllowedOrgs, ", ")
}

// ResolveRegistryJSONPath picks the file: the flag's value, else
// REGWARD_REGISTRY_JSON, else the platform path.
func ResolveRegistryJSONPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv(RegistryJSONEnv); p != "" {
		return p
	}
	return DefaultRegistryJSONPath()
}

// LoadEnforcement reads registry.json at path ("" for
// ResolveRegistryJSONPath). A missing file means sign-in is not enforced; a
// file that exists but cannot be read or parsed is an error, never a reason
// to stop enforcing.
func LoadEnforcement(path string) (Enforcement, error) {
	path = ResolveRegistryJSONPath(path)
	e := Enforcement{Path: path}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return e, fmt.Errorf("read registry.json: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return e, fmt.Errorf("read registry.json: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return e, fmt.Errorf("registry.json %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRegistryJSON+1))
	if err != nil {
		return e, fmt.Errorf("read registry.json %s: %w", path, err)
	}
	rj, err := ParseRegistryJSON(data)
	if err != nil {
		return e, fmt.Errorf("registry.json %s: %w", path, err)
	}
	e.Enforced, e.AllowedOrgs = true, rj.AllowedOrgs
	e.Warnings = permissionWarnings(path, fi)
	return e, nil
}
