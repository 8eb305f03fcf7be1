package client

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRegistryJSONGood(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"one org", `{"allowedOrgs":["acme"]}`, []string{"acme"}},
		{"several orgs", `{"allowedOrgs":["acme","beta","x_y-9"]}`, []string{"acme", "beta", "x_y-9"}},
		{"pretty with final newline", "{\n  \"allowedOrgs\": [\n    \"acme\"\n  ]\n}\n", []string{"acme"}},
		{"CRLF and tabs", "{\r\n\t\"allowedOrgs\" : [ \"acme\" ,\"beta\" ]\r\n}\r\n", []string{"acme", "beta"}},
		{"digits first", `{"allowedOrgs":["1org"]}`, []string{"1org"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rj, err := ParseRegistryJSON([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParseRegistryJSON(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, rj.AllowedOrgs); diff != "" {
				t.Errorf("allowedOrgs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRegistryJSONBad(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        string
		line, col int    // 0: no position expected
		field     string // expected Field
		msg       string // substring of the message
	}{
		{"BOM", "\xEF\xBB\xBF{\"allowedOrgs\":[\"acme\"]}", 1, 1, "", "byte order mark"},
		{"UTF-16", "\xFF\xFE{\x00", 1, 1, "", "UTF-16"},
		{"invalid UTF-8", "{\"allowedOrgs\":[\"ac\xC3\x28me\"]}", 1, 20, "", "invalid UTF-8 (byte 0xC3)"},
		{"empty file", "", 0, 0, "", "the file is empty"},
		{"only white space", " \n\t", 0, 0, "", "the file is empty"},
		{"uppercase org", `{"allowedOrgs":["Acme"]}`, 1, 17, "allowedOrgs[0]", `"Acme" has uppercase letters`},
		{"uppercase second org", "{\"allowedOrgs\": [\n  \"acme\",\n  \"BETA\"\n]}", 3, 3, "allowedOrgs[1]", `"BETA" has uppercase letters`},
		{"org with space", `{"allowedOrgs":[" acme"]}`, 1, 17, "allowedOrgs[0]", `" acme" is not an organization name`},
		{"empty org", `{"allowedOrgs":[""]}`, 1, 17, "allowedOrgs[0]", "empty organization name"},
		{"org too long", `{"allowedOrgs":["` + strings.Repeat("a", 64) + `"]}`, 1, 17, "allowedOrgs[0]", "is not an organization name"},
		{"list is a string", `{"allowedOrgs":"acme"}`, 1, 16, "allowedOrgs", `found the string "acme"`},
		{"list is null", `{"allowedOrgs":null}`, 1, 16, "allowedOrgs", "found null"},
		{"list is an object", `{"allowedOrgs":{"acme":true}}`, 1, 16, "allowedOrgs", "found an object"},
		{"number in list", `{"allowedOrgs":["acme",42]}`, 1, 24, "allowedOrgs[1]", "found the number 42"},
		{"nested list", `{"allowedOrgs":[["acme"]]}`, 1, 17, "allowedOrgs[0]", "found a list"},
		{"empty list", `{"allowedOrgs":[]}`, 1, 16, "allowedOrgs", "the list is empty"},
		{"duplicate org", `{"allowedOrgs":["acme","beta","acme"]}`, 1, 31, "allowedOrgs[2]", `"acme" is listed twice (also allowedOrgs[0])`},
		{"duplicate key", `{"allowedOrgs":["acme"],"allowedOrgs":["beta"]}`, 1, 25, "allowedOrgs", "appears twice"},
		{"unknown field", `{"allowedOrgs":["acme"],"enforce":true}`, 1, 25, "enforce", `unknown field "enforce"`},
		{"wrong case key", `{"allowedorgs":["acme"]}`, 1, 2, "allowedorgs", `the key is "allowedOrgs"`},
		{"missing key", `{}`, 1, 1, "allowedOrgs", "missing"},
		{"top-level list", `["acme"]`, 1, 1, "", "found a list"},
		{"top-level string", `"acme"`, 1, 1, "", `found the string "acme"`},
		{"trailing garbage", "{\"allowedOrgs\":[\"acme\"]}\nx", 2, 1, "", "after the closing brace"},
		{"second object", `{"allowedOrgs":["acme"]}{}`, 1, 25, "", "after the closing brace"},
		{"trailing comma", `{"allowedOrgs":["acme",]}`, 1, 24, "", "not valid JSON"},
		{"unterminated", `{"allowedOrgs":["acme"]`, 1, 24, "", "ends before the JSON is complete"},
		{"single quotes", `{'allowedOrgs':['acme']}`, 1, 2, "", "not valid JSON"},
		{"comment", "// org list\n{\"allowedOrgs\":[\"acme\"]}", 1, 1, "", "not valid JSON"},
		{"bad literal", "{\"allowedOrgs\":tru}", 1, 19, "", "not valid JSON"},
		{"missing comma", "{\"allowedOrgs\":[\"a\" \"b\"]}", 1, 21, "", "after array element"},
		{"control character", "{\"allowedOrgs\":[\"a\x01\"]}", 1, 19, "", "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRegistryJSON([]byte(tc.in))
			var re *RegistryJSONError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRegistryJSON(%q) = %v, want a *RegistryJSONError", tc.in, err)
			}
			if re.Line != tc.line || re.Column != tc.col {
				t.Errorf("position = line %d, column %d; want line %d, column %d (%v)", re.Line, re.Column, tc.line, tc.col, err)
			}
			if re.Field != tc.field {
				t.Errorf("field = %q, want %q (%v)", re.Field, tc.field, err)
			}
			if !strings.Contains(re.Msg, tc.msg) {
				t.Errorf("message %q lacks %q", re.Msg, tc.msg)
			}
		})
	}
}

func TestRegistryJSONErrorText(t *testing.T) {
	_, err := ParseRegistryJSON([]byte(`{"allowedOrgs":["Acme"]}`))
	want := `line 1, column 17: allowedOrgs[0]: "Acme" has uppercase letters; organization names are lowercase and compared case-sensitively`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

func TestRegistryJSONPathPerPlatform(t *testing.T) {
	for goos, want := range map[string]string{
		"linux":   "/usr/share/docker-desktop/registry/registry.json",
		"darwin":  "/Library/Application Support/com.docker.docker/registry.json",
		"windows": `C:\ProgramData\DockerDesktop\registry.json`,
	} {
		if got := registryJSONPathFor(goos); got != want {
			t.Errorf("%s: %q, want %q", goos, got, want)
		}
	}
	t.Setenv(RegistryJSONEnv, "/from/env.json")
	if got := ResolveRegistryJSONPath(""); got != "/from/env.json" {
		t.Errorf("with %s set: %q", RegistryJSONEnv, got)
	}
	if got := ResolveRegistryJSONPath("/from/flag.json"); got != "/from/flag.json" {
		t.Errorf("the flag does not win over the environment: %q", got)
	}
}

func TestLoadEnforcement(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.json")
	e, err := LoadEnforcement(missing)
	if err != nil || e.Enforced || !e.Allows("anything") {
		t.Fatalf("missing file: %+v, %v; want not enforced", e, err)
	}

	good := filepath.Join(dir, "registry.json")
	writeFile(t, good, `{"allowedOrgs":["acme","beta"]}`, 0o444)
	e, err = LoadEnforcement(good)
	if err != nil || !e.Enforced {
		t.Fatalf("good file: %+v, %v", e, err)
	}
	if !e.Allows("acme") || !e.Allows("beta") || e.Allows("gamma") || e.Allows("ACME") {
		t.Errorf("Allows is wrong for %v", e.AllowedOrgs)
	}
	if got, want := e.Refusal(), "this machine requires sign-in to one of: acme, beta"; got != want {
		t.Errorf("Refusal() = %q, want %q", got, want)
	}
	if os.Geteuid() == 0 && len(e.Warnings) != 0 {
		t.Errorf("a root-owned 0444 file in a 0755 root directory has warnings: %q", e.Warnings)
	}

	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, `{"allowedOrgs":["Acme"]}`, 0o444)
	if _, err := LoadEnforcement(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "line 1, column 17") {
		t.Errorf("bad file: %v; want an error naming the file and the position", err)
	}
	if _, err := LoadEnforcement(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}

func containsAll(ws []string, subs ...string) bool {
	all := strings.Join(ws, "\n")
	for _, s := range subs {
		if !strings.Contains(all, s) {
			return false
		}
	}
	return true
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseRegistryJSON: the parser never panics; what it accepts is a
// non-empty list of distinct valid names that survives a round trip, and
// what it refuses comes with a position inside the file.
func FuzzParseRegistryJSON(f *testing.F) {
	for _, s := range []string{
		`{"allowedOrgs":["acme"]}`,
		`{"allowedOrgs":["acme","beta"]}`,
		"\xEF\xBB\xBF{\"allowedOrgs\":[\"acme\"]}",
		`{"allowedOrgs":["Acme"]}`,
		`{"allowedOrgs":[]}`,
		`{"allowedOrgs":"acme"}`,
		`{"allowedOrgs":["acme"]} x`,
		`{"allowedOrgs":["acme"],"x":1}`,
		`{"allowedOrgs":["a","a"]}`,
		`{"allowedOrgs":[1,{"a":[null]}]}`,
		"{\"allowedOrgs\":[\"\xff\"]}",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rj, err := ParseRegistryJSON(data)
		if err != nil {
			var re *RegistryJSONError
			if !errors.As(err, &re) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if re.Line < 0 || re.Column < 0 || re.Msg == "" {
				t.Fatalf("error without a usable position or message: %#v", re)
			}
			lines := strings.Count(string(data), "\n") + 1
			if re.Line > lines {
				t.Fatalf("error on line %d of a %d-line file: %v", re.Line, lines, err)
			}
			return
		}
		if len(rj.AllowedOrgs) == 0 {
			t.Fatalf("accepted %q with no orgs", data)
		}
		seen := map[string]bool{}
		for _, o := range rj.AllowedOrgs {
			if !orgName.MatchString(o) || seen[o] {
				t.Fatalf("accepted %q with org %q", data, o)
			}
			seen[o] = true
		}
		again, err := ParseRegistryJSON(mustJSON(t, rj))
		if err != nil || !cmp.Equal(again, rj) {
			t.Fatalf("round trip of %q: %+v, %v", data, again, err)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
