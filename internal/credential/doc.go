// Package credential makes and checks secrets: argon2id password hashes,
// one-time passwords, and access tokens that are shown once and stored only
// as hashes. It imports nothing of regward.
package credential
