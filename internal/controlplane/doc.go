// Package controlplane is regward's API server: accounts and tokens, orgs and
// members, policies with Save & Apply and long-poll, checks, the activity
// log, and the endpoints gateways use. The admin console builds on the same
// Server methods.
//
// It knows policy, store and credential; it must never import gateway,
// console or cmd (they wire themselves to it).
package controlplane
