package policy

import (
	"fmt"
	"strings"
)

// Error joins every problem as "field: message; field: message" so that a
// single line in a log or a CLI error still names each field.
func (e *ValidationError) Error() string {
	if e == nil || len(e.Errors) == 0 {
		return "invalid policy"
	}
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.String())
	}
	return b.String()
}

// String renders one problem as "field: message".
func (fe FieldError) String() string {
	if fe.Field == "" {
		return fe.Message
	}
	return fe.Field + ": " + fe.Message
}

// problems collects field errors while a policy is decoded or validated.
type problems struct {
	errs []FieldError
}

func (p *problems) add(field, format string, args ...any) {
	p.errs = append(p.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was found, so callers can return it directly
// without the typed-nil-in-interface trap.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: p.errs}
}

// quote renders user input for an error message, cut short so that a
// megabyte of garbage does not become a megabyte of error text.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// joinPath appends a field name to a dotted path.
func joinPath(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

func indexPath(prefix string, i int) string {
	return fmt.Sprintf("%s[%d]", prefix, i)
}
