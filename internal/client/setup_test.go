package client

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"

var stamp = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestMergeDaemonJSONKeepsOtherKeys(t *testing.T) {
	existing := []byte(`{
  "log-driver": "journald",
  "registry-mirrors": ["https://mirror.example"],
  "proxies": {"no-proxy": "internal.example", "http-proxy": "http://old:1"},
  "features": {"buildkit": true}
}`)
	out, kept, err := mergeDaemonJSON(existing, "http://127.0.0.1:3128", "")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("merged daemon.json is not JSON: %v\n%s", err, out)
	}
	want := map[string]any{
		"log-driver":       "journald",
		"registry-mirrors": []any{"https://mirror.example"},
		"features":         map[string]any{"buildkit": true},
		"proxies": map[string]any{
			"http-proxy":  "http://127.0.0.1:3128",
			"https-proxy": "http://127.0.0.1:3128",
			"no-proxy":    "internal.example",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged daemon.json (-want +got):\n%s", diff)
	}
	if kept != "internal.example" {
		t.Errorf("kept no-proxy = %q", kept)
	}

	out, kept, err = mergeDaemonJSON(existing, "http://127.0.0.1:3128", "localhost")
	if err != nil || kept != "" || !strings.Contains(string(out), `"no-proxy": "localhost"`) {
		t.Errorf("--no-proxy does not replace the list: kept %q, %v\n%s", kept, err, out)
	}
}

func TestMergeDaemonJSONRefusesBrokenFiles(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":          `{"log-driver": `,
		"a list":            `["a"]`,
		"trailing data":     `{} {}`,
		"proxies not a map": `{"proxies": "http://x"}`,
	} {
		if _, _, err := mergeDaemonJSON([]byte(in), "http://127.0.0.1:3128", ""); err == nil || !strings.Contains(err.Error(), daemonJSON) {
			t.Errorf("%s: err = %v, want an error naming %s", name, err, daemonJSON)
		}
	}
	if out, _, err := mergeDaemonJSON(nil, "http://127.0.0.1:3128", ""); err != nil || !json.Valid(out) {
		t.Errorf("no daemon.json: %v\n%s", err, out)
	}
}

func TestSetupDockerWriteWithBackupAndUndo(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, daemonJSON)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	original := []byte("{\n  \"log-level\": \"warn\",\n  \"insecure-registries\": [\"10.0.0.5:5000\"]\n}\n")
	if err := os.WriteFile(path, original, 0o640); err != nil {
		t.Fatal(err)
	}
	plan, err := PlanSetup(SetupOptions{Client: "docker", Gateway: "http://127.0.0.1:3128", Root: root, CA: []byte(testCA), CASource: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var ran [][]string
	res, err := plan.Apply(root, stamp, func(c []string) error { ran = append(ran, c); return nil })
	if err != nil {
		t.Fatal(err)
	}

	// daemon.json: merged, mode kept, backup holds the original.
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if m["log-level"] != "warn" || m["insecure-registries"] == nil || m["proxies"] == nil {
		t.Errorf("daemon.json lost keys or lacks proxies:\n%s", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("daemon.json mode %v, want the original 0640", fi.Mode().Perm())
	}
	backup := path + ".regward-backup-20260304T050607Z"
	if b, err := os.ReadFile(backup); err != nil || !bytes.Equal(b, original) {
		t.Errorf("backup %s: %v, content %q", backup, err, b)
	}

	// The CA went into the trust store, and the trust store was rebuilt
	// before dockerd restarted.
	ca := filepath.Join(root, "/usr/local/share/ca-certificates/regward-gateway-ca.crt")
	if b, err := os.ReadFile(ca); err != nil || string(b) != testCA {
		t.Errorf("CA file: %v %q", err, b)
	}
	wantRan := [][]string{{"update-ca-certificates"}, {"systemctl", "restart", "docker"}}
	if diff := cmp.Diff(wantRan, ran); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}

	var report bytes.Buffer
	res.Report(&report, root)
	for _, want := range []string{
		"changed   " + path + " (previous content in " + backup + ")",
		"created   " + ca,
		"ran       systemctl restart docker",
		"to undo, as root:",
		"mv '" + backup + "' '" + path + "'",
		"rm '" + ca + "'",
	} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}

	// Running the undo instructions restores the original.
	if err := os.Rename(backup, path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, original) {
		t.Errorf("undo did not restore the original")
	}
}

func TestSetupWriteTwiceChangesNothing(t *testing.T) {
	root := t.TempDir()
	plan, err := PlanSetup(SetupOptions{Client: "containerd", Gateway: "http://127.0.0.1:3128", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(root, stamp, nil); err != nil {
		t.Fatal(err)
	}
	res, err := plan.Apply(root, stamp.Add(time.Second), func([]string) error {
		t.Error("a command ran although nothing changed")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || !res.Files[0].Unchanged || len(res.Skipped) != 0 {
		t.Errorf("second apply: %+v", res)
	}
	matches, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system/containerd.service.d/*regward-backup*"))
	if len(matches) != 0 {
		t.Errorf("backups of an unchanged file: %v", matches)
	}
}

func TestSetupPlans(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		client    string
		file      string
		content   []string
		after     [][]string
		noRestart bool
	}{
		{
			client: "podman", file: containersConf,
			content: []string{"[engine]\nenv = [\n", `"HTTPS_PROXY=http://127.0.0.1:3128",`, `"https_proxy=http://127.0.0.1:3128",`},
		},
		{
			client: "containerd", file: "/etc/systemd/system/containerd.service.d/50-regward-proxy.conf",
			content: []string{"[Service]\n", `Environment="HTTPS_PROXY=http://127.0.0.1:3128"`, `Environment="NO_PROXY=10.0.0.0/8"`},
			after:   [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "restart", "containerd"}},
		},
		{
			client: "buildkit", file: "/etc/systemd/system/buildkit.service.d/50-regward-proxy.conf",
			content: []string{`Environment="HTTP_PROXY=http://127.0.0.1:3128"`},
			after:   [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "restart", "buildkit"}},
		},
	} {
		t.Run(tc.client, func(t *testing.T) {
			o := SetupOptions{Client: tc.client, Gateway: "http://127.0.0.1:3128", Root: root}
			if tc.client == "containerd" {
				o.NoProxy = "10.0.0.0/8"
			}
			plan, err := PlanSetup(o)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Files) != 1 || plan.Files[0].Path != tc.file {
				t.Fatalf("files: %+v", plan.Files)
			}
			for _, c := range tc.content {
				if !strings.Contains(string(plan.Files[0].Content), c) {
					t.Errorf("%s lacks %q:\n%s", tc.file, c, plan.Files[0].Content)
				}
			}
			if diff := cmp.Diff(tc.after, plan.After); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := PlanSetup(SetupOptions{Client: "lxc", Gateway: "http://127.0.0.1:3128"}); err == nil || !strings.Contains(err.Error(), "docker, podman, containerd, buildkit") {
		t.Errorf("unknown client: %v", err)
	}
}

func TestSetupFedoraTrustStore(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/pki/ca-trust/source/anchors"), 0o755); err != nil {
		t.Fatal(err)
	}
	plan, err := PlanSetup(SetupOptions{Client: "podman", Gateway: "http://127.0.0.1:3128", Root: root, CA: []byte(testCA), CASource: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Files[1].Path != "/etc/pki/ca-trust/source/anchors/regward-gateway-ca.pem" {
		t.Errorf("CA path %s", plan.Files[1].Path)
	}
	if diff := cmp.Diff([][]string{{"update-ca-trust", "extract"}}, plan.After); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}

func TestSetupGatewayCredentialIsSecret(t *testing.T) {
	const token = "rw_s3cr3t_T0ken"
	gw := "https://alice:" + token + "@gw.example.com:3129"
	root := t.TempDir()
	plan, err := PlanSetup(SetupOptions{Client: "containerd", Gateway: gw, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	plan.Print(&out, Redactor(gw))
	if strings.Contains(out.String(), token) {
		t.Fatalf("the printed settings show the token:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "alice:xxxxx@gw.example.com:3129") {
		t.Errorf("the printed settings lack the redacted URL:\n%s", out.String())
	}
	if _, err := plan.Apply(root, stamp, nil); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(root, plan.Files[0].Path)
	fi, err := os.Stat(f)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a file holding the token has mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if b, _ := os.ReadFile(f); !strings.Contains(string(b), token) {
		t.Errorf("the written file lacks the real credential:\n%s", b)
	}

	for _, bad := range []string{
		"http://alice:" + token + "@gw.example.com:3128", // a token in clear across the network
		"socks5://127.0.0.1:1080",
		"http://127.0.0.1:3128/path",
		"127.0.0.1:3128",
	} {
		_, err := PlanSetup(SetupOptions{Client: "docker", Gateway: bad, Root: root})
		if err == nil {
			t.Errorf("--gateway %q accepted", bad)
		} else if strings.Contains(err.Error(), token) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

func TestSystemdDropInEscapes(t *testing.T) {
	got := string(systemdDropIn([][2]string{{"HTTPS_PROXY", `https://u:p%40ss"\@gw:3129`}}, false))
	want := "[Service]\nEnvironment=\"HTTPS_PROXY=https://u:p%%40ss\\\"\\\\@gw:3129\"\n"
	if got != want {
		t.Errorf("drop-in:\n got %q\nwant %q", got, want)
	}
}
