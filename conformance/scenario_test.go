package conformance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/conformance"
	"github.com/tandemhq/tandem/protocol"
)

func TestEveryScenarioFileLoads(t *testing.T) {
	scenarios, err := conformance.Load(scenarioDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(scenarios) < 10 {
		t.Errorf("%d scenarios, want at least 10", len(scenarios))
	}
}

// TestAScenarioThatCannotRunIsRefused: an unknown op, an unknown field,
// an unknown event kind or field, or a client used before it connects make
// the file fail to load, so that no driver passes over a step it does not
// know.
func TestAScenarioThatCannotRunIsRefused(t *testing.T) {
	for name, steps := range map[string]string{
		"unknown op":           `{"op":"connect","client":"a"},{"op":"teleport","client":"a"}`,
		"unknown field":        `{"op":"connect","client":"a","colour":"red"}`,
		"unknown kind":         `{"op":"connect","client":"a"},{"op":"expect","client":"a","events":[{"kind":"party"}]}`,
		"unknown event field":  `{"op":"connect","client":"a"},{"op":"expect","client":"a","events":[{"kind":"resumed","why":"x"}]}`,
		"client not connected": `{"op":"rpc","client":"a","method":"echo"}`,
		"missing field":        `{"op":"connect","client":"a"},{"op":"leave","client":"a"}`,
		"unknown node":         `{"op":"connect","client":"a","node":"z"}`,
	} {
		path := filepath.Join(t.TempDir(), "bad.json")
		doc := `{"description":"bad","covers":["nothing"],"steps":[` + steps + `]}`
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := conformance.LoadFile(path); err == nil {
			t.Errorf("%s: loaded", name)
		} else if !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
}

// TestEveryCloseCodeIsCovered: each close code of the protocol is what
// some scenario expects a client to see (or a node to send), so a new code
// cannot land without a scenario proving every SDK's reaction to it.
func TestEveryCloseCodeIsCovered(t *testing.T) {
	scenarios, err := conformance.Load(scenarioDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range scenarios {
		for _, st := range s.Steps {
			if st.Op == "inject_close" || st.Op == "await_close" {
				seen[st.Code] = true
			}
			if st.Error != nil && st.Error.Close != "" {
				seen[st.Error.Close] = true
			}
			for _, ev := range st.Events {
				if code, ok := ev["code"].(string); ok && (ev.Kind() == "disconnected" || ev.Kind() == "closed" || ev.Kind() == "session_lost") {
					seen[code] = true
				}
			}
		}
	}
	for _, c := range protocol.CloseCodes() {
		if !seen[c.String()] {
			t.Errorf("no scenario covers the close code %s (%d)", c, c)
		}
	}
}
