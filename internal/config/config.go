// Package config fills a command's flags from, in order of precedence, the
// command line, REGWARD_* environment variables, and an optional YAML file.
// The file is decoded strictly: a key that is not a flag of the command is an
// error naming the key. It imports nothing of regward.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that sets a flag.
const EnvPrefix = "REGWARD_"

// EnvName is the variable for a flag: --proxy-listen is REGWARD_PROXY_LISTEN.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Apply sets every flag of fs that was not given on the command line from
// the environment, then from the YAML file at path (skipped when path is "").
// Flags named in skip are never read from the environment or file (e.g.
// "config" itself).
func Apply(fs *pflag.FlagSet, path string, env func(string) (string, bool), skip ...string) error {
	if env == nil {
		env = os.LookupEnv
	}
	skipped := make(map[string]bool, len(skip))
	for _, s := range skip {
		skipped[s] = true
	}
	var file map[string]yaml.Node
	if path != "" {
		var err error
		file, err = readFile(path)
		if err != nil {
			return err
		}
		var unknown []string
		for k := range file {
			if fs.Lookup(k) == nil || skipped[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("config file %s: unknown key %q (keys are the command's flag names, e.g. proxy-listen)", path, unknown[0])
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || skipped[f.Name] {
			return
		}
		if v, ok := env(EnvName(f.Name)); ok {
			if err := setAll(fs, f, []string{v}, true); err != nil {
				errs = append(errs, fmt.Errorf("environment %s: %w", EnvName(f.Name), err))
			}
			return
		}
		n, ok := file[f.Name]
		if !ok {
			return
		}
		vals, err := scalarValues(&n)
		if err != nil {
			errs = append(errs, fmt.Errorf("config file %s: key %q: %w", path, f.Name, err))
			return
		}
		if err := setAll(fs, f, vals, false); err != nil {
			errs = append(errs, fmt.Errorf("config file %s: key %q: %w", path, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

func readFile(path string) (map[string]yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var m map[string]yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) || len(bytes.TrimSpace(data)) == 0 {
			return map[string]yaml.Node{}, nil
		}
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return m, nil
}

// scalarValues accepts a scalar, or a list of scalars for repeatable flags.
func scalarValues(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: list items must be plain values", c.Line)
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: want a value or a list of values", n.Line)
}

// setAll sets a flag; for slice flags from the environment, commas separate values.
func setAll(fs *pflag.FlagSet, f *pflag.Flag, vals []string, fromEnv bool) error {
	isSlice := strings.HasSuffix(f.Value.Type(), "Slice") || strings.HasSuffix(f.Value.Type(), "Array")
	if !isSlice && len(vals) != 1 {
		return fmt.Errorf("takes one value, got a list of %d", len(vals))
	}
	if isSlice && fromEnv {
		vals = strings.Split(vals[0], ",")
	}
	for _, v := range vals {
		if err := fs.Set(f.Name, v); err != nil {
			return err
		}
	}
	return nil
}
