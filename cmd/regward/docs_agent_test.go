package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentServiceExamples keeps docs/agent honest: the systemd unit and
// the launchd plist run `regward agent` with flags it has.
func TestAgentServiceExamples(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "agent")

	unit, err := os.ReadFile(filepath.Join(dir, "regward-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	var execStart []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	checkAgentArgs(t, "regward-agent.service ExecStart", execStart)
	for _, want := range []string{"[Service]", "Restart=on-failure", "[Install]\nWantedBy=default.target"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("regward-agent.service lacks %q", want)
		}
	}

	data, err := os.ReadFile(filepath.Join(dir, "com.regward.agent.plist"))
	if err != nil {
		t.Fatal(err)
	}
	var plist struct {
		Dict struct {
			Items []struct {
				XMLName xml.Name
				Text    string   `xml:",chardata"`
				Strings []string `xml:"string"`
			} `xml:",any"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal(data, &plist); err != nil {
		t.Fatalf("com.regward.agent.plist is not XML: %v", err)
	}
	var key string
	found := map[string][]string{}
	for _, it := range plist.Dict.Items {
		switch it.XMLName.Local {
		case "key":
			key = it.Text
		default:
			found[key] = append(found[key], it.XMLName.Local+":"+it.Text)
			if it.XMLName.Local == "array" {
				found[key+"[]"] = it.Strings
			}
		}
	}
	if got := found["Label"]; len(got) != 1 || got[0] != "string:com.regward.agent" {
		t.Errorf("plist Label: %v", got)
	}
	if _, ok := found["RunAtLoad"]; !ok {
		t.Error("plist lacks RunAtLoad")
	}
	checkAgentArgs(t, "com.regward.agent.plist ProgramArguments", found["ProgramArguments[]"])
}

func checkAgentArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) < 2 || filepath.Base(args[0]) != "regward" || args[1] != "agent" {
		t.Fatalf("%s: %q does not run `regward agent`", where, args)
	}
	if err := newAgentCmd().ParseFlags(args[2:]); err != nil {
		t.Errorf("%s: %v", where, err)
	}
}
