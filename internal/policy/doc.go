// Package policy is regward's access policy: the model an organization's
// owners edit (registry, image and namespace access), its strict decoding and
// validation, host-name normalisation and matching, the Docker Hub image
// classification, and the decisions the gateway, the control plane and the
// client all take from a compiled policy.
//
// It is the one place these rules live, so every enforcement point agrees.
// The package is pure: no I/O beyond the namespace lists embedded with
// go:embed, no clocks, no logging. It must never import any other regward
// package; everything else imports it.
package policy
