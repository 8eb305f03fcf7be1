// Package gwca is the gateway's certificate authority: created once per
// installation (its key never leaves the data directory), it mints short-
// lived leaf certificates for the registry hosts the gateway inspects, and
// caches them in a bounded LRU. It imports nothing of regward.
package gwca
