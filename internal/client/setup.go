package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SetupClients are the clients `regward setup` knows.
var SetupClients = []string{"docker", "podman", "containerd", "buildkit"}

// SetupOptions describe the machine and the gateway to point a client at.
type SetupOptions struct {
	Client string
	// Gateway is the proxy URL: the local agent (http://127.0.0.1:3128) or
	// a central gateway (https://USER:TOKEN@gw.example.com:3129).
	Gateway string
	// NoProxy, when not empty, replaces the client's no-proxy list. Every
	// host in it bypasses the gateway.
	NoProxy string
	// Root is where the target file system starts ("/" normally; a
	// directory in tests). Existing files are read from there.
	Root string
	// CA is the PEM certificate the gateway signs inspected connections
	// with; nil when it does not inspect TLS. CASource says where it came
	// from, for the output.
	CA       []byte
	CASource string
}

// FileChange is one file setup writes, with its complete new content.
type FileChange struct {
	Path    string // on the target system, e.g. /etc/docker/daemon.json
	Why     string
	Content []byte
	Mode    os.FileMode
	// Secret: the content holds the proxy credential; printed redacted
	// and written 0600.
	Secret bool
	Merged bool // the content keeps an existing file's other settings
}

// SetupPlan is what setup prints and, with --write, applies.
type SetupPlan struct {
	Client  string
	Gateway string // redacted for display
	Files   []FileChange
	// After are the commands to run as root once the files are written.
	After [][]string
	// Alternatives are other ways to the same settings, as text.
	Alternatives []Alternative
	Notes        []string
}

// Alternative is another way to apply the proxy settings.
type Alternative struct {
	Title string
	Text  string
}

// PlanSetup builds the settings for one client.
func PlanSetup(o SetupOptions) (SetupPlan, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	gw, err := parseGateway(o.Gateway)
	if err != nil {
		return SetupPlan{}, err
	}
	if o.CA != nil && !bytes.Contains(o.CA, []byte("-----BEGIN CERTIFICATE-----")) {
		return SetupPlan{}, fmt.Errorf("the gateway CA from %s is not a PEM certificate", o.CASource)
	}
	p := SetupPlan{Client: o.Client, Gateway: gw.Redacted()}
	secret := gw.User != nil
	env := proxyEnv(gw.String(), o.NoProxy)
	switch o.Client {
	case "docker":
		err = p.docker(o, gw, secret, env)
	case "podman":
		p.podman(gw, secret, env)
	case "containerd":
		p.systemdService("containerd", "containerd", secret, env)
		p.Notes = append(p.Notes,
			"On Kubernetes nodes, add the cluster's service and pod ranges and the API server to --no-proxy: containerd's proxy settings also apply to what it fetches for the kubelet.")
	case "buildkit":
		p.systemdService("buildkit", "buildkitd", secret, env)
		p.buildkitNotes(gw)
	default:
		return SetupPlan{}, fmt.Errorf("unknown client %q: use one of %s", o.Client, strings.Join(SetupClients, ", "))
	}
	if err != nil {
		return SetupPlan{}, err
	}
	if o.CA != nil {
		p.addCA(o)
	}
	p.After = append(p.After, p.restart()...)
	if secret {
		p.Notes = append(p.Notes, "The gateway URL holds your access token: the files that contain it are written with mode 0600, and the token is shown here as xxxxx.")
	}
	return p, nil
}

func parseGateway(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--gateway %q: want a proxy URL such as http://127.0.0.1:3128 or https://USER:TOKEN@gw.example.com:3129", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--gateway %q: a proxy URL has no path, query or fragment", u.Redacted())
	}
	u.Path = ""
	if u.User != nil && u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("--gateway %s: a token must not cross the network in clear; use the gateway's https:// address", u.Redacted())
	}
	return u, nil
}

// proxyEnv is the proxy environment in both spellings: Go reads the upper
// case, curl and others the lower.
func proxyEnv(proxy, noProxy string) [][2]string {
	env := [][2]string{{"HTTP_PROXY", proxy}, {"HTTPS_PROXY", proxy}, {"http_proxy", proxy}, {"https_proxy", proxy}}
	if noProxy != "" {
		env = append(env, [2]string{"NO_PROXY", noProxy}, [2]string{"no_proxy", noProxy})
	}
	return env
}

const daemonJSON = "/etc/docker/daemon.json"

func (p *SetupPlan) docker(o SetupOptions, gw *url.URL, secret bool, env [][2]string) error {
	existing, err := os.ReadFile(filepath.Join(o.Root, daemonJSON))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", daemonJSON, err)
	}
	merged, kept, err := mergeDaemonJSON(existing, gw.String(), o.NoProxy)
	if err != nil {
		return err
	}
	p.Files = append(p.Files, FileChange{
		Path: daemonJSON, Why: "dockerd's proxies (Docker Engine 23.0 or later)", Content: merged,
		Mode: 0o644, Secret: secret, Merged: len(existing) > 0,
	})
	if kept != "" {
		p.Notes = append(p.Notes, fmt.Sprintf("daemon.json keeps its no-proxy list %q: registries on those hosts bypass the gateway. Pass --no-proxy to replace it.", kept))
	}
	p.Alternatives = append(p.Alternatives, Alternative{
		Title: "for Docker Engine before 23.0, a systemd drop-in /etc/systemd/system/docker.service.d/http-proxy.conf instead of daemon.json (then systemctl daemon-reload)",
		Text:  string(systemdDropIn(env, true)),
	})
	p.Notes = append(p.Notes,
		"Docker Desktop ignores daemon.json proxies: set Settings > Resources > Proxies > Manual to "+gw.Redacted()+" for both HTTP and HTTPS.")
	return nil
}

// mergeDaemonJSON sets proxies in an existing daemon.json, keeping every
// other key as it was. It returns the no-proxy list it kept, if any.
func mergeDaemonJSON(existing []byte, proxy, noProxy string) ([]byte, string, error) {
	top := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(existing)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(existing))
		if err := dec.Decode(&top); err != nil {
			return nil, "", fmt.Errorf("%s is not a JSON object (%v): fix it before running setup, which will not overwrite it", daemonJSON, err)
		}
		if dec.More() {
			return nil, "", fmt.Errorf("%s has data after its JSON object: fix it before running setup", daemonJSON)
		}
	}
	proxies := map[string]json.RawMessage{}
	if raw, ok := top["proxies"]; ok {
		if err := json.Unmarshal(raw, &proxies); err != nil {
			return nil, "", fmt.Errorf(`%s: "proxies" is not an object (%v): fix it before running setup`, daemonJSON, err)
		}
	}
	set := func(k, v string) {
		b, _ := json.Marshal(v)
		proxies[k] = b
	}
	set("http-proxy", proxy)
	set("https-proxy", proxy)
	kept := ""
	if noProxy != "" {
		set("no-proxy", noProxy)
	} else if raw, ok := proxies["no-proxy"]; ok {
		_ = json.Unmarshal(raw, &kept)
	}
	pb, err := json.Marshal(proxies)
	if err != nil {
		return nil, "", err
	}
	top["proxies"] = pb
	out, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return nil, "", err
	}
	return append(out, '\n'), kept, nil
}

const containersConf = "/etc/containers/containers.conf.d/50-regward-proxy.conf"

func (p *SetupPlan) podman(gw *url.URL, secret bool, env [][2]string) {
	var b strings.Builder
	b.WriteString("# Written by `regward setup podman`: podman, buildah and skopeo pull\n# through the regward gateway.\n[engine]\nenv = [\n")
	for _, kv := range env {
		fmt.Fprintf(&b, "  %s,\n", tomlString(kv[0]+"="+kv[1]))
	}
	b.WriteString("]\n")
	p.Files = append(p.Files, FileChange{Path: containersConf, Why: "podman's engine environment, containers.conf(5) [engine] env",
		Content: []byte(b.String()), Mode: 0o644, Secret: secret})
	var sh strings.Builder
	for _, kv := range env {
		fmt.Fprintf(&sh, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	p.Alternatives = append(p.Alternatives,
		Alternative{Title: "for one shell or a CI job (rootless podman, skopeo, buildah), the environment", Text: sh.String()})
	p.Notes = append(p.Notes,
		"For one user's rootless podman, the same file may go in ~/.config/containers/containers.conf.d/ instead.",
		"A containers.conf read after this one that sets [engine] env replaces the list. Restart `podman system service` or `podman machine` if you use them.")
}

func (p *SetupPlan) systemdService(unit, daemon string, secret bool, env [][2]string) {
	p.Files = append(p.Files, FileChange{
		Path:    "/etc/systemd/system/" + unit + ".service.d/50-regward-proxy.conf",
		Why:     daemon + "'s environment (a systemd drop-in)",
		Content: systemdDropIn(env, false), Mode: 0o644, Secret: secret,
	})
	p.After = append(p.After, []string{"systemctl", "daemon-reload"})
}

func (p *SetupPlan) buildkitNotes(gw *url.URL) {
	proxy := gw.Redacted()
	p.Alternatives = append(p.Alternatives, Alternative{
		Title: "for a buildx builder of the docker-container driver (its buildkitd runs in a container)",
		Text: "docker buildx create --name regward --driver docker-container --driver-opt network=host \\\n" +
			"  --driver-opt env.http_proxy=" + proxy + " --driver-opt env.https_proxy=" + proxy + " --use\n",
	})
	p.Notes = append(p.Notes,
		"The default builder of the docker driver uses dockerd's settings: run `regward setup docker` for it.",
		"network=host lets a containerized buildkitd reach an agent on 127.0.0.1; with a central gateway it is not needed.")
}

// trustStore is where the system's extra CAs go and the command that
// rebuilds the bundle: Debian's layout unless the root has Fedora's.
func trustStore(root string) (string, []string) {
	if fi, err := os.Stat(filepath.Join(root, "/etc/pki/ca-trust/source/anchors")); err == nil && fi.IsDir() {
		return "/etc/pki/ca-trust/source/anchors/regward-gateway-ca.pem", []string{"update-ca-trust", "extract"}
	}
	return "/usr/local/share/ca-certificates/regward-gateway-ca.crt", []string{"update-ca-certificates"}
}

func (p *SetupPlan) addCA(o SetupOptions) {
	path, update := trustStore(o.Root)
	why := "the gateway CA (from " + o.CASource + "), so that inspected registries such as Docker Hub are trusted"
	if p.Client == "docker" {
		why += "; dockerd ignores /etc/docker/certs.d for Docker Hub, so it goes into the system trust store"
	}
	p.Files = append(p.Files, FileChange{Path: path, Why: why, Content: o.CA, Mode: 0o644})
	p.After = append([][]string{update}, p.After...)
	if p.Client == "docker" {
		p.Alternatives = append(p.Alternatives, Alternative{
			Title: "instead of the system trust store, dockerd's own bundle: a file of the system roots plus this CA, named in dockerd's environment",
			Text:  "[Service]\nEnvironment=\"SSL_CERT_FILE=/etc/docker/regward-roots.pem\"\n",
		})
	}
}

func (p *SetupPlan) restart() [][]string {
	switch p.Client {
	case "docker":
		return [][]string{{"systemctl", "restart", "docker"}}
	case "containerd":
		return [][]string{{"systemctl", "restart", "containerd"}}
	case "buildkit":
		return [][]string{{"systemctl", "restart", "buildkit"}}
	}
	return nil
}

// systemdDropIn is a [Service] section setting env. Values are quoted for
// systemd: '%' doubles, '"' and '\' are escaped.
func systemdDropIn(env [][2]string, upperOnly bool) []byte {
	var b strings.Builder
	b.WriteString("[Service]\n")
	for _, kv := range env {
		if upperOnly && strings.ToUpper(kv[0]) != kv[0] {
			continue
		}
		v := kv[0] + "=" + kv[1]
		v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%").Replace(v)
		fmt.Fprintf(&b, "Environment=\"%s\"\n", v)
	}
	return []byte(b.String())
}

func tomlString(s string) string {
	b, _ := json.Marshal(s) // a JSON string is a valid TOML basic string for these values
	return string(b)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Print writes the settings for people, with the credential redacted.
func (p SetupPlan) Print(w io.Writer, redact func([]byte) []byte) {
	fmt.Fprintf(w, "# regward setup %s: send %s's registry traffic through %s\n", p.Client, p.Client, p.Gateway)
	for _, f := range p.Files {
		how := ""
		if f.Merged {
			how = ", merged with the existing file"
		}
		fmt.Fprintf(w, "\n## %s (%s%s)\n", f.Path, f.Why, how)
		content := f.Content
		if f.Secret {
			content = redact(content)
		}
		w.Write(content)
	}
	if len(p.After) > 0 {
		fmt.Fprintf(w, "\n## then, as root\n")
		for _, c := range p.After {
			fmt.Fprintln(w, strings.Join(c, " "))
		}
	}
	for _, a := range p.Alternatives {
		fmt.Fprintf(w, "\n## or, %s\n", a.Title)
		w.Write(redact([]byte(a.Text)))
	}
	if len(p.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range p.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	}
}

// Redactor replaces the gateway URL's password with xxxxx wherever it
// appears (as written and as percent-encoded in URLs).
func Redactor(gateway string) func([]byte) []byte {
	u, err := url.Parse(gateway)
	if err != nil || u.User == nil {
		return func(b []byte) []byte { return b }
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		return func(b []byte) []byte { return b }
	}
	forms := []string{url.UserPassword("x", pw).String()[2:], pw} // encoded first: it may contain the plain form
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	return func(b []byte) []byte {
		s := string(b)
		for _, f := range forms {
			s = strings.ReplaceAll(s, f, "xxxxx")
		}
		return []byte(s)
	}
}
