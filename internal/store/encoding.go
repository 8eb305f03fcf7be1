package store

import (
	"encoding/json"

	"github.com/regward/regward/internal/policy"
)

// Every backend keeps policies and catalogs as the JSON these functions
// produce, so the stored form is defined in one place.

// EncodePolicy returns p as it is stored.
func EncodePolicy(p policy.Policy) ([]byte, error) {
	return json.Marshal(p)
}

// DecodePolicy reads a policy stored by EncodePolicy.
func DecodePolicy(data []byte) (policy.Policy, error) {
	var p policy.Policy
	err := json.Unmarshal(data, &p)
	return p, err
}

// EncodeCatalog returns c as it is stored.
func EncodeCatalog(c policy.Catalog) ([]byte, error) {
	return json.Marshal(c)
}

// DecodeCatalog reads a catalog stored by EncodeCatalog. Its lists are
// never nil (see EmptyCatalog).
func DecodeCatalog(data []byte) (policy.Catalog, error) {
	var c policy.Catalog
	if err := json.Unmarshal(data, &c); err != nil {
		return policy.Catalog{}, err
	}
	return emptyLists(c), nil
}

// EmptyCatalog is the catalog of a scope that has none: empty lists, not
// nil ones, so that API responses show [] rather than null.
func EmptyCatalog() policy.Catalog {
	return emptyLists(policy.Catalog{})
}

// emptyLists turns nil lists into empty ones.
func emptyLists(c policy.Catalog) policy.Catalog {
	if c.VerifiedPublishers == nil {
		c.VerifiedPublishers = []string{}
	}
	if c.SponsoredOSS == nil {
		c.SponsoredOSS = []string{}
	}
	return c
}
