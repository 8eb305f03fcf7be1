package console

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/regward/regward/internal/controlplane"
)

// defaultProxyPort is the gateway's port when Options.Gateway is not set.
const defaultProxyPort = "3128"

type snippet struct {
	ID, Title, Intro, File, Code, After, Note string
}

type setupView struct {
	Org, User, Gateway string
	HasCA              bool
	RegistryJSONPaths  [][2]string
	Snippets           []snippet
}

var registryJSONPaths = [][2]string{
	{"Linux", "/usr/share/docker-desktop/registry/registry.json"},
	{"macOS", "/Library/Application Support/com.docker.docker/registry.json"},
	{"Windows", `C:\ProgramData\DockerDesktop\registry.json`},
}

// gatewayAddr is the proxy address to show: the configured one, or this
// console's host name on the default proxy port.
func (c *Console) gatewayAddr(r *http.Request) string {
	if c.gateway != "" {
		return c.gateway
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), defaultProxyPort)
}

func (c *Console) handleSetup(w http.ResponseWriter, r *http.Request, s *session) {
	gw := c.gatewayAddr(r)
	proxy := "http://" + s.Username + ":TOKEN@" + gw
	sv := setupView{Org: s.Org, User: s.Username, Gateway: gw, HasCA: len(c.srv.GatewayCA()) > 0,
		RegistryJSONPaths: registryJSONPaths, Snippets: setupSnippets(proxy)}
	c.render(w, r, http.StatusOK, "setup", &view{Title: "Setup", Nav: "setup", S: s, Data: sv})
}

// setupSnippets are the client settings, with the proxy URL filled in but
// never a real token: TOKEN stays a placeholder.
func setupSnippets(proxy string) []snippet {
	const noProxy = "localhost,127.0.0.0/8,::1"
	env := "HTTP_PROXY=" + proxy + "\nHTTPS_PROXY=" + proxy + "\nNO_PROXY=" + noProxy
	dropIn := "[Service]\nEnvironment=\"HTTP_PROXY=" + proxy + "\"\nEnvironment=\"HTTPS_PROXY=" + proxy + "\"\nEnvironment=\"NO_PROXY=" + noProxy + "\"\n"
	return []snippet{
		{ID: "docker", Title: "Docker Engine: daemon.json",
			Intro: "Docker Engine 23 and later read proxy settings from daemon.json.",
			File:  "/etc/docker/daemon.json",
			Code: "{\n  \"proxies\": {\n    \"http-proxy\": \"" + proxy + "\",\n    \"https-proxy\": \"" + proxy +
				"\",\n    \"no-proxy\": \"" + noProxy + "\"\n  }\n}\n",
			After: "sudo systemctl restart docker",
			Note:  "Merge these keys into an existing daemon.json rather than replacing it."},
		{ID: "docker-systemd", Title: "Docker Engine: systemd drop-in",
			Intro: "For older engines, or to keep the setting out of daemon.json.",
			File:  "/etc/systemd/system/docker.service.d/http-proxy.conf",
			Code:  dropIn,
			After: "sudo systemctl daemon-reload && sudo systemctl restart docker"},
		{ID: "ca", Title: "Gateway CA in the system trust store",
			Intro: "Needed when the gateway inspects Docker Hub (image access rules) or pull-only registries. " +
				"dockerd ignores /etc/docker/certs.d for Docker Hub, so the CA must be trusted system-wide and dockerd restarted.",
			File: "Debian, Ubuntu",
			Code: "sudo cp regward-gateway-ca.pem /usr/local/share/ca-certificates/regward-gateway-ca.crt\n" +
				"sudo update-ca-certificates\nsudo systemctl restart docker\n",
			Note: "Fedora, RHEL: copy the file to /etc/pki/ca-trust/source/anchors/ and run sudo update-ca-trust."},
		{ID: "podman", Title: "Podman",
			Intro: "Podman takes proxy variables from containers.conf (per user, or /etc/containers/containers.conf for all).",
			File:  "~/.config/containers/containers.conf",
			Code:  "[engine]\nenv = [\n  \"HTTP_PROXY=" + proxy + "\",\n  \"HTTPS_PROXY=" + proxy + "\",\n  \"NO_PROXY=" + noProxy + "\",\n]\n",
			Note:  "These variables are used by podman itself, not passed into containers."},
		{ID: "containerd", Title: "containerd (Kubernetes nodes, nerdctl)",
			File:  "/etc/systemd/system/containerd.service.d/http-proxy.conf",
			Code:  dropIn,
			After: "sudo systemctl daemon-reload && sudo systemctl restart containerd",
			Note:  "On Kubernetes nodes, add the cluster's service and pod ranges to NO_PROXY."},
		{ID: "ci", Title: "CI runners",
			Intro: "Set these variables in the job, with the token from a secret. Tools that pull themselves (skopeo, crane, buildah, " +
				"BuildKit) use them directly; a Docker daemon on the runner needs its own settings above.",
			Code: env + "\n",
			Note: "Use a dedicated member (for example ci-bot) and a token of its own, so CI pulls are on record under that name."},
	}
}

func (c *Console) handleRegistryJSON(w http.ResponseWriter, r *http.Request, s *session) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="registry.json"`)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(controlplane.RegistryJSON{AllowedOrgs: []string{s.Org}}); err != nil {
		c.log.Warn("console: write registry.json", "org", s.Org, "err", err)
	}
}

func (c *Console) handleGatewayCA(w http.ResponseWriter, r *http.Request, s *session) {
	pem := c.srv.GatewayCA()
	if len(pem) == 0 {
		c.render(w, r, http.StatusNotFound, "error", &view{Title: "No gateway CA", S: s,
			Error: "This installation has no gateway CA: TLS inspection is not set up, so clients need no extra certificate."})
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="regward-gateway-ca.pem"`)
	_, _ = w.Write(pem)
}
