package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// A policy document is first read into a small tree of nodes, from JSON or
// from YAML, and then walked against the schema. Walking a tree rather than
// unmarshalling into structs is what lets one pass report every unknown
// field, wrong type and missing field with its full path.

type nodeKind uint8

const (
	kindNull nodeKind = iota
	kindBool
	kindNumber
	kindString
	kindList
	kindObject
	kindOther // a YAML scalar of a type JSON does not have (binary, custom tags)
)

func (k nodeKind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindList:
		return "a list"
	case kindObject:
		return "an object"
	default:
		return "a value of another type"
	}
}

type node struct {
	kind  nodeKind
	str   string // text of a string or number
	b     bool
	items []*node
	keys  []string // object keys in document order
	vals  []*node
	index map[string]bool
}

// setKey appends a key and its value, refusing a duplicate. The index keeps
// a hostile object with many keys from costing quadratic time.
func (n *node) setKey(key string, val *node) bool {
	if n.index == nil {
		n.index = make(map[string]bool)
	}
	if n.index[key] {
		return false
	}
	n.index[key] = true
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, val)
	return true
}

// maxDepth bounds nesting far above the schema's own depth (4), so hostile
// input cannot make the tree builders recurse without limit.
const maxDepth = 32

// parseTree reads a JSON document when the input starts with "{" and YAML
// otherwise. Trying YAML after a JSON error would turn a JSON typo into a
// confusing YAML message, so the first byte decides.
func parseTree(data []byte) (*node, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM some editors write
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("empty policy document")
	}
	if !utf8.Valid(data) {
		return nil, errors.New("the document is not valid UTF-8")
	}
	if trimmed[0] == '{' {
		return parseJSON(trimmed)
	}
	return parseYAML(data)
}

func parseJSON(data []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := jsonValue(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: unexpected data after the top-level object")
	}
	return n, nil
}

func jsonValue(dec *json.Decoder, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &node{kind: kindNull}, nil
	case bool:
		return &node{kind: kindBool, b: t}, nil
	case json.Number:
		return &node{kind: kindNumber, str: t.String()}, nil
	case string:
		return &node{kind: kindString, str: t}, nil
	case json.Delim:
		switch t {
		case '[':
			n := &node{kind: kindList}
			for dec.More() {
				item, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, item)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		case '{':
			n := &node{kind: kindObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				val, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				if !n.setKey(key, val) {
					return nil, fmt.Errorf("duplicate key %s", quote(key))
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func (n *node) has(key string) bool {
	return n.index[key]
}

func parseYAML(data []byte) (*node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, errors.New("empty policy document")
		}
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, errors.New("invalid YAML: more than one document; a policy file holds one")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("empty policy document")
	}
	return yamlValue(doc.Content[0], 0)
}

func yamlValue(y *yaml.Node, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, errors.New("invalid YAML: nested too deeply")
	}
	// Anchors and aliases are refused: a policy has no use for them, and
	// expanding them is the classic way to blow up a YAML decoder's memory.
	if y.Kind == yaml.AliasNode || y.Anchor != "" {
		return nil, fmt.Errorf("invalid YAML: line %d: anchors and aliases are not supported in a policy", y.Line)
	}
	switch y.Kind {
	case yaml.ScalarNode:
		return yamlScalar(y)
	case yaml.SequenceNode:
		n := &node{kind: kindList}
		for _, c := range y.Content {
			item, err := yamlValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, item)
		}
		return n, nil
	case yaml.MappingNode:
		n := &node{kind: kindObject}
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return nil, fmt.Errorf("invalid YAML: line %d: keys must be strings", k.Line)
			}
			val, err := yamlValue(v, depth+1)
			if err != nil {
				return nil, err
			}
			if !n.setKey(k.Value, val) {
				return nil, fmt.Errorf("invalid YAML: line %d: duplicate key %s", k.Line, quote(k.Value))
			}
		}
		return n, nil
	}
	return nil, fmt.Errorf("invalid YAML: line %d: unexpected node", y.Line)
}

func yamlScalar(y *yaml.Node) (*node, error) {
	switch y.ShortTag() {
	case "!!null":
		return &node{kind: kindNull}, nil
	case "!!bool":
		switch strings.ToLower(y.Value) {
		case "true":
			return &node{kind: kindBool, b: true}, nil
		case "false":
			return &node{kind: kindBool, b: false}, nil
		}
		return nil, fmt.Errorf("invalid YAML: line %d: %s is not true or false", y.Line, quote(y.Value))
	case "!!int", "!!float":
		return &node{kind: kindNumber, str: y.Value}, nil
	case "!!str", "!!timestamp":
		// An unquoted date is a timestamp to YAML but just text to a policy,
		// as it is in JSON.
		return &node{kind: kindString, str: y.Value}, nil
	}
	return &node{kind: kindOther, str: y.Value}, nil
}
