// Package ociref parses what a registry client names: image references as
// docker normalises them, and OCI distribution API paths. It is pure and
// imports nothing of regward.
package ociref
