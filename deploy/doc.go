// Package deploy holds regward's deployment files, not code: a systemd unit
// for a single node and one for gateway hosts (systemd/), Kubernetes
// manifests for control-plane replicas and gateways (kubernetes/), the
// container image (container/), and an example HA layout (ha/: a TCP load
// balancer and an egress firewall). docs/DEPLOY.md explains them.
//
// Its tests check that every file parses and hangs together: the manifests'
// kinds, selectors, probes and references; the configuration files against
// the flags of the regward binary, by starting it with them; the units with
// systemd-analyze; the firewall rules with nft.
package deploy
