package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The parts of the Kubernetes objects the manifests use, decoded strictly
// so that a misspelt field (readinessprobe, matchLabel) is an error.
type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	file       string
	node       *yaml.Node
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type probe struct {
	HTTPGet *struct {
		Path   string `yaml:"path"`
		Port   any    `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port any `yaml:"port"`
	} `yaml:"tcpSocket"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	TimeoutSeconds      int `yaml:"timeoutSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	ReadinessProbe  *probe         `yaml:"readinessProbe"`
	LivenessProbe   *probe         `yaml:"livenessProbe"`
	Resources       map[string]any `yaml:"resources"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type deployment struct {
	object `yaml:",inline"`
	Spec   struct {
		Replicas             int            `yaml:"replicas"`
		RevisionHistoryLimit int            `yaml:"revisionHistoryLimit"`
		Selector             labelSelector  `yaml:"selector"`
		Strategy             map[string]any `yaml:"strategy"`
		Template             struct {
			Metadata meta `yaml:"metadata"`
			Spec     struct {
				AutomountServiceAccountToken  *bool          `yaml:"automountServiceAccountToken"`
				TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
				Affinity                      map[string]any `yaml:"affinity"`
				SecurityContext               struct {
					RunAsNonRoot   *bool          `yaml:"runAsNonRoot"`
					RunAsUser      int            `yaml:"runAsUser"`
					RunAsGroup     int            `yaml:"runAsGroup"`
					FSGroup        int            `yaml:"fsGroup"`
					SeccompProfile map[string]any `yaml:"seccompProfile"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
					EmptyDir map[string]any `yaml:"emptyDir"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type service struct {
	object `yaml:",inline"`
	Spec   struct {
		Type                  string            `yaml:"type"`
		ExternalTrafficPolicy string            `yaml:"externalTrafficPolicy"`
		Selector              map[string]string `yaml:"selector"`
		Ports                 []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
			Protocol   string `yaml:"protocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type configMap struct {
	object `yaml:",inline"`
	Data   map[string]string `yaml:"data"`
}

type secret struct {
	object     `yaml:",inline"`
	Type       string            `yaml:"type"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
}

type pdb struct {
	object `yaml:",inline"`
	Spec   struct {
		MinAvailable   any           `yaml:"minAvailable"`
		MaxUnavailable any           `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type networkPeer struct {
	PodSelector       *labelSelector `yaml:"podSelector"`
	NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
	IPBlock           map[string]any `yaml:"ipBlock"`
}

type networkPort struct {
	Port     any    `yaml:"port"`
	Protocol string `yaml:"protocol"`
}

type networkPolicy struct {
	object `yaml:",inline"`
	Spec   struct {
		PodSelector labelSelector `yaml:"podSelector"`
		PolicyTypes []string      `yaml:"policyTypes"`
		Ingress     []struct {
			Ports []networkPort `yaml:"ports"`
			From  []networkPeer `yaml:"from"`
		} `yaml:"ingress"`
		Egress []struct {
			Ports []networkPort `yaml:"ports"`
			To    []networkPeer `yaml:"to"`
		} `yaml:"egress"`
	} `yaml:"spec"`
}

type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
	Images     []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// apiVersions are the kinds the manifests may hold, with their API group.
var apiVersions = map[string]string{
	"Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1",
	"Deployment": "apps/v1", "PodDisruptionBudget": "policy/v1",
	"NetworkPolicy": "networking.k8s.io/v1",
}

// manifests is every object of every YAML file of a directory.
type manifests struct {
	objects     []object
	deployments []deployment
	services    []service
	configMaps  map[string]configMap
	secrets     map[string]secret
	pdbs        []pdb
	policies    []networkPolicy
}

func strictDecode(n *yaml.Node, v any) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		return err
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	return dec.Decode(v)
}

func loadManifests(t *testing.T, dir string, files []string) *manifests {
	t.Helper()
	m := &manifests{configMaps: map[string]configMap{}, secrets: map[string]secret{}}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i+1, err)
			}
			var o object
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s: document %d: %v", f, i+1, err)
			}
			o.file, o.node = f, &n
			where := fmt.Sprintf("%s: %s %q", f, o.Kind, o.Metadata.Name)
			if want, ok := apiVersions[o.Kind]; !ok || o.APIVersion != want || o.Metadata.Name == "" {
				t.Fatalf("%s (document %d): apiVersion %q kind %q name %q; want a known kind with its apiVersion and a name",
					f, i+1, o.APIVersion, o.Kind, o.Metadata.Name)
			}
			m.objects = append(m.objects, o)
			var dst any
			switch o.Kind {
			case "Deployment":
				dst = &deployment{}
			case "Service":
				dst = &service{}
			case "ConfigMap":
				dst = &configMap{}
			case "Secret":
				dst = &secret{}
			case "PodDisruptionBudget":
				dst = &pdb{}
			case "NetworkPolicy":
				dst = &networkPolicy{}
			case "Namespace":
				dst = &object{}
			}
			if err := strictDecode(&n, dst); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			switch v := dst.(type) {
			case *deployment:
				m.deployments = append(m.deployments, *v)
			case *service:
				m.services = append(m.services, *v)
			case *configMap:
				m.configMaps[v.Metadata.Name] = *v
			case *secret:
				m.secrets[v.Metadata.Name] = *v
			case *pdb:
				m.pdbs = append(m.pdbs, *v)
			case *networkPolicy:
				m.policies = append(m.policies, *v)
			}
		}
	}
	return m
}

// selects reports whether a selector picks pods with labels (an empty
// selector picks none here: the manifests always name what they select).
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// selected returns the Deployments whose pods sel picks.
func (m *manifests) selected(sel map[string]string) []deployment {
	var out []deployment
	for _, d := range m.deployments {
		if selects(sel, d.Spec.Template.Metadata.Labels) {
			out = append(out, d)
		}
	}
	return out
}

func hasPort(d deployment, port any) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if port == p.Name || port == p.ContainerPort {
				return true
			}
		}
	}
	return false
}

const k8sDir = "kubernetes"

func TestKubernetesManifests(t *testing.T) {
	var k kustomization
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.Kind != "Kustomization" || k.Namespace != "regward" {
		t.Fatalf("kustomization.yaml: kind %q namespace %q", k.Kind, k.Namespace)
	}
	// Every manifest is applied, except the examples meant for other namespaces.
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	var files, examples []string
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == "kustomization.yaml" || !strings.HasSuffix(n, ".yaml"):
		case strings.HasSuffix(n, ".example.yaml"):
			examples = append(examples, n)
		default:
			files = append(files, n)
		}
	}
	res := slices.Clone(k.Resources)
	sort.Strings(res)
	if !slices.Equal(res, files) {
		t.Errorf("kustomization.yaml resources %v, want every manifest %v", res, files)
	}

	m := loadManifests(t, k8sDir, files)
	loadManifests(t, k8sDir, examples) // parse and kinds only

	for _, o := range m.objects {
		if o.Kind != "Namespace" && o.Metadata.Namespace != "" && o.Metadata.Namespace != k.Namespace {
			t.Errorf("%s: %s %s in namespace %q, kustomization sets %q", o.file, o.Kind, o.Metadata.Name, o.Metadata.Namespace, k.Namespace)
		}
	}
	if len(m.deployments) != 2 {
		t.Fatalf("%d Deployments, want the control plane and the gateways", len(m.deployments))
	}
	images := map[string]bool{}
	for _, im := range k.Images {
		images[im.Name] = true
	}
	commands := map[string]bool{}
	for _, d := range m.deployments {
		checkDeployment(t, m, d, images)
		commands[d.Spec.Template.Spec.Containers[0].Args[0]] = true
	}
	if !commands["serve"] || !commands["gateway"] {
		t.Errorf("Deployments run %v, want serve and gateway", commands)
	}
	for _, s := range m.services {
		ds := m.selected(s.Spec.Selector)
		if len(ds) != 1 {
			t.Errorf("Service %s selects %d Deployments, want 1", s.Metadata.Name, len(ds))
			continue
		}
		for _, p := range s.Spec.Ports {
			if !hasPort(ds[0], p.TargetPort) {
				t.Errorf("Service %s port %s targets %v, not a port of %s", s.Metadata.Name, p.Name, p.TargetPort, ds[0].Metadata.Name)
			}
		}
	}
	for _, p := range m.pdbs {
		if len(m.selected(p.Spec.Selector.MatchLabels)) != 1 {
			t.Errorf("PodDisruptionBudget %s selects no single Deployment", p.Metadata.Name)
		}
	}
	for _, np := range m.policies {
		ds := m.selected(np.Spec.PodSelector.MatchLabels)
		if len(ds) != 1 {
			t.Errorf("NetworkPolicy %s selects %d Deployments, want 1", np.Metadata.Name, len(ds))
			continue
		}
		for _, in := range np.Spec.Ingress {
			for _, p := range in.Ports {
				if !hasPort(ds[0], p.Port) {
					t.Errorf("NetworkPolicy %s admits port %v, which %s does not have", np.Metadata.Name, p.Port, ds[0].Metadata.Name)
				}
			}
			for _, from := range in.From {
				if from.PodSelector != nil && from.NamespaceSelector == nil && len(m.selected(from.PodSelector.MatchLabels)) == 0 {
					t.Errorf("NetworkPolicy %s admits pods %v that no Deployment has", np.Metadata.Name, from.PodSelector.MatchLabels)
				}
			}
		}
	}
}

func checkDeployment(t *testing.T, m *manifests, d deployment, images map[string]bool) {
	t.Helper()
	name := "Deployment " + d.Metadata.Name
	ps := d.Spec.Template.Spec
	if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
		t.Errorf("%s: selector %v does not match its pods' labels %v", name, d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
	}
	if d.Spec.Replicas < 2 {
		t.Errorf("%s: %d replicas; an HA layout needs at least 2", name, d.Spec.Replicas)
	}
	if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.RunAsUser == 0 {
		t.Errorf("%s: pods must run as a non-root user", name)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(ps.Containers))
	}
	c := ps.Containers[0]
	image, _, _ := strings.Cut(c.Image, ":")
	if c.Image == "" || !images[image] {
		t.Errorf("%s: image %q is not one kustomization.yaml sets", name, c.Image)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: container must not escalate, must have a read-only root and drop ALL capabilities", name)
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef == nil {
			t.Errorf("%s: envFrom other than a Secret", name)
			continue
		}
		if _, ok := m.secrets[ef.SecretRef.Name]; !ok {
			t.Errorf("%s: envFrom Secret %q is not in the manifests", name, ef.SecretRef.Name)
		}
	}
	if len(c.Args) < 3 || (c.Args[0] != "serve" && c.Args[0] != "gateway") || c.Args[1] != "--config" {
		t.Fatalf("%s: args %v, want [serve|gateway --config FILE]", name, c.Args)
	}
	cmd, cfgPath := c.Args[0], c.Args[2]

	// The config file comes from a ConfigMap mounted at its directory.
	var cm *configMap
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != path.Dir(cfgPath) {
			continue
		}
		for _, v := range ps.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				if got, ok := m.configMaps[v.ConfigMap.Name]; ok {
					cm = &got
				}
			}
		}
	}
	if cm == nil {
		t.Fatalf("%s: no ConfigMap mounted at %s", name, path.Dir(cfgPath))
	}
	cfg, ok := cm.Data[path.Base(cfgPath)]
	if !ok {
		t.Fatalf("%s: ConfigMap %s has no key %s", name, cm.Metadata.Name, path.Base(cfgPath))
	}
	keys := map[string]any{}
	if err := yaml.Unmarshal([]byte(cfg), &keys); err != nil {
		t.Fatalf("%s: ConfigMap %s %s: %v", name, cm.Metadata.Name, path.Base(cfgPath), err)
	}
	// Every directory the configuration names is a writable volume.
	for _, k := range []string{"data", "cache-dir"} {
		dir, ok := keys[k].(string)
		if !ok {
			continue
		}
		mounted := false
		for _, vm := range c.VolumeMounts {
			mounted = mounted || (vm.MountPath == dir && !vm.ReadOnly)
		}
		if !mounted {
			t.Errorf("%s: %s %s is not a writable volume (the root file system is read-only)", name, k, dir)
		}
	}
	// The ports the configuration listens on are the container's.
	for _, k := range []string{"listen", "proxy-listen"} {
		addr, ok := keys[k].(string)
		if !ok {
			continue
		}
		_, port, _ := strings.Cut(addr, ":")
		found := false
		for _, p := range c.Ports {
			found = found || fmt.Sprint(p.ContainerPort) == port
		}
		if !found && !(k == "proxy-listen" && keys["no-gateway"] == true) {
			t.Errorf("%s: %s %s is not a container port", name, k, addr)
		}
	}

	switch cmd {
	case "serve":
		if keys["no-gateway"] != true {
			t.Errorf("%s: control-plane replicas run without the embedded gateway (no-gateway: true)", name)
		}
		rp, lp := c.ReadinessProbe, c.LivenessProbe
		if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/readyz" || !hasPort(d, rp.HTTPGet.Port) {
			t.Errorf("%s: readiness must be GET /readyz on a container port", name)
		}
		if lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" || !hasPort(d, lp.HTTPGet.Port) {
			t.Errorf("%s: liveness must be GET /healthz on a container port", name)
		}
		if !envFromSecretKey(m, c, "REGWARD_DATABASE") {
			t.Errorf("%s: the database URL must come from a Secret (REGWARD_DATABASE)", name)
		}
		t.Run("serve-config", func(t *testing.T) {
			tryServeConfig(t, writeTemp(t, cfg), keys)
		})
	case "gateway":
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s: gateways need readiness and liveness probes", name)
		}
		if !envFromSecretKey(m, c, "REGWARD_TOKEN") {
			t.Errorf("%s: the gateway token must come from a Secret (REGWARD_TOKEN)", name)
		}
		if _, ok := keys["control-plane"]; !ok {
			t.Errorf("%s: the configuration names no control-plane", name)
		}
		t.Run("gateway-config", func(t *testing.T) {
			tryGatewayConfig(t, writeTemp(t, cfg), keys)
		})
	}
}

// envFromSecretKey reports whether the container gets variable from a
// Secret that holds it.
func envFromSecretKey(m *manifests, c container, variable string) bool {
	for _, ef := range c.EnvFrom {
		if ef.SecretRef == nil {
			continue
		}
		s := m.secrets[ef.SecretRef.Name]
		if _, ok := s.StringData[variable]; ok {
			return true
		}
		if _, ok := s.Data[variable]; ok {
			return true
		}
	}
	for _, e := range c.Env {
		if e.Name == variable && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return true
		}
	}
	return false
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
