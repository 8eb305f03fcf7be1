package policy

import (
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"sync"
)

//go:embed catalog/verified-publishers.txt
var verifiedPublishersFile []byte

//go:embed catalog/sponsored-oss.txt
var sponsoredOSSFile []byte

// shippedCatalog parses the embedded lists once. They are part of the
// binary, so a parse error is a build defect, caught by the package tests.
var shippedCatalog = sync.OnceValue(func() Catalog {
	vp, err := ParseNamespaceList(verifiedPublishersFile)
	if err != nil {
		panic(fmt.Sprintf("policy: shipped catalog/verified-publishers.txt: %v", err))
	}
	oss, err := ParseNamespaceList(sponsoredOSSFile)
	if err != nil {
		panic(fmt.Sprintf("policy: shipped catalog/sponsored-oss.txt: %v", err))
	}
	return Catalog{VerifiedPublishers: vp, SponsoredOSS: oss}
})

// DefaultCatalog is the namespace lists shipped with regward. Each call
// returns fresh slices the caller may change.
func DefaultCatalog() Catalog {
	c := shippedCatalog()
	return Catalog{
		VerifiedPublishers: cloneSlice(c.VerifiedPublishers),
		SponsoredOSS:       cloneSlice(c.SponsoredOSS),
	}
}

// ParseNamespaceList parses a namespace list file: one namespace a line, '#'
// comments (whole-line or after the name), blank lines ignored. Names are
// returned in file order, duplicates kept, so a caller can tell how many
// entries it was given. A bad line is an error naming its number.
func ParseNamespaceList(data []byte) ([]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	out := []string{}
	for i, line := range strings.Split(string(data), "\n") {
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("line %d: %s: one namespace a line", i+1, quote(line))
		}
		if err := namespaceSyntax(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, line)
	}
	return out, nil
}
