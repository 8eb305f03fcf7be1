//go:build !unix

package client

import "io/fs"

// permissionWarnings checks nothing where ownership is not a uid: on
// Windows the file's ACL decides, which Docker's documentation covers.
func permissionWarnings(string, fs.FileInfo) []string { return nil }
