package loadtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/internal/realtimetest"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/token"
)

// startNode serves an in-process gateway on 127.0.0.1:0 that trusts the dev
// key of a fresh data directory, the way `tandem dev` does, and returns its
// URL and the signer the load tool loads from that directory.
func startNode(t *testing.T) (string, *token.Signer) {
	t.Helper()
	signer, err := token.LoadOrCreateDevKey(filepath.Join(t.TempDir(), "dev-signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	n := realtimetest.Start(t, signer, nil)
	return n.URL, n.Signer
}

// TestEveryScenarioRunsAgainstANode runs each scenario with tiny counts. It
// proves the scenarios work end to end; it asserts no timing, only what
// must hold whatever the machine: every connection opened and held, and
// resumes that lose or double nothing.
func TestEveryScenarioRunsAgainstANode(t *testing.T) {
	url, signer := startNode(t)
	cases := []struct {
		name string
		cfg  Config
	}{
		{"idle", Config{Scenario: "idle", Clients: 20, Duration: 300 * time.Millisecond}},
		{"connect", Config{Scenario: "connect", Clients: 20, Concurrency: 4, Duration: 5 * time.Second}},
		{"echo", Config{Scenario: "echo", Clients: 2, Duration: 500 * time.Millisecond}},
		{"echo json", Config{Scenario: "echo", Clients: 2, Duration: 500 * time.Millisecond, Codec: "json"}},
		{"broadcast", Config{Scenario: "broadcast", Rooms: 3, RoomSize: 4, Rate: 20, Duration: 500 * time.Millisecond}},
		{"broadcast json", Config{Scenario: "broadcast", Rooms: 2, RoomSize: 3, Rate: 20, Duration: 300 * time.Millisecond, Codec: "json"}},
		{"saturation", Config{Scenario: "broadcast", Rooms: 2, RoomSize: 3, Rate: 0, Window: 4, Duration: 300 * time.Millisecond}},
		{"resume", Config{Scenario: "resume", Iterations: 5, Missed: 20}},
		{"resume json", Config{Scenario: "resume", Iterations: 3, Missed: 10, Codec: "json"}},
		{"chat", Config{Scenario: "chat", Rooms: 2, RoomSize: 3, Rate: 10, Duration: 500 * time.Millisecond}},
		{"chat with faults", Config{Scenario: "chat", Rooms: 2, RoomSize: 3, Rate: 10, Duration: 500 * time.Millisecond,
			Faults: Faults{Latency: 2 * time.Millisecond, Jitter: time.Millisecond, Bandwidth: 64 << 10}}},
		{"reconnect", Config{Scenario: "reconnect", Clients: 12, RoomSize: 4, Iterations: 3, Missed: 5}},
		{"reconnect through the proxy", Config{Scenario: "reconnect", Clients: 8, RoomSize: 4, Iterations: 2, Missed: 5, Faults: Faults{Proxy: true}}},
		// The same scenarios with one Go SDK client per bot.
		{"connect sdk", Config{Bots: "sdk", Scenario: "connect", Clients: 12, Concurrency: 4, Duration: 5 * time.Second}},
		{"broadcast sdk", Config{Bots: "sdk", Scenario: "broadcast", Rooms: 2, RoomSize: 3, Rate: 20, Duration: 300 * time.Millisecond}},
		{"saturation sdk", Config{Bots: "sdk", Scenario: "broadcast", Rooms: 2, RoomSize: 3, Rate: 0, Window: 4, Duration: 300 * time.Millisecond}},
		{"chat sdk", Config{Bots: "sdk", Scenario: "chat", Rooms: 2, RoomSize: 3, Rate: 10, Duration: 300 * time.Millisecond}},
		{"chat sdk json", Config{Bots: "sdk", Scenario: "chat", Rooms: 1, RoomSize: 3, Rate: 10, Duration: 300 * time.Millisecond, Codec: "json"}},
		{"reconnect sdk", Config{Bots: "sdk", Scenario: "reconnect", Clients: 8, RoomSize: 4, Iterations: 2, Missed: 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL, cfg.Signer = url, signer
			if runtime.GOOS == "linux" {
				cfg.ServerPID = os.Getpid() // the node runs in this process
			}
			var log bytes.Buffer
			cfg.Log = &log
			rep, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			var table bytes.Buffer
			if err := rep.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", table.String())
			for _, n := range rep.Notes {
				if strings.Contains(n, "failed") || strings.Contains(n, "lost") || strings.Contains(n, "refused") || strings.Contains(n, "stopped") {
					t.Errorf("note: %s", n)
				}
			}
			if cfg.Bots == "sdk" {
				if rep.Bots != "sdk" || !strings.Contains(rep.Setup, "Go SDK bots") {
					t.Errorf("bots %q, setup %q: want the sdk mode named", rep.Bots, rep.Setup)
				}
				if len(rep.Closes) > 0 || len(rep.Errors) > 0 || strings.Contains(strings.Join(rep.Notes, "\n"), "disconnected") {
					t.Errorf("closes %v, errors %v, notes %q: want none", rep.Closes, rep.Errors, rep.Notes)
				}
			} else if rep.Bots != "raw" {
				t.Errorf("bots %q, want raw", rep.Bots)
			}
			must := map[string]func(v float64) bool{}
			switch cfg.Scenario {
			case "idle":
				must["connections held"] = func(v float64) bool { return v == float64(cfg.Clients) }
				if cfg.ServerPID != 0 {
					must["server RSS growth per connection"] = func(float64) bool { return true }
				}
			case "connect":
				must["connections opened"] = func(v float64) bool { return v == float64(cfg.Clients) }
			case "echo":
				must["room_message echo samples"] = func(v float64) bool { return v > 0 }
				must["ping → pong samples"] = func(v float64) bool { return v > 0 }
			case "broadcast":
				must["send → receipt samples"] = func(v float64) bool { return v > 0 }
				must["messages sent"] = func(v float64) bool { return v > 0 }
			case "resume":
				must["resumes"] = func(v float64) bool { return v == float64(cfg.Iterations) }
				must["messages lost"] = func(v float64) bool { return v == 0 }
				must["messages received twice"] = func(v float64) bool { return v == 0 }
				must["gaps (replay buffer exceeded)"] = func(v float64) bool { return v == 0 }
			case "chat":
				must["send → receipt samples"] = func(v float64) bool { return v > 0 }
				must["messages sent"] = func(v float64) bool { return v > 0 }
			case "reconnect":
				victims := cfg.Clients - cfg.Clients/cfg.RoomSize
				must["storms"] = func(v float64) bool { return v == float64(cfg.Iterations) }
				must["resumes done"] = func(v float64) bool { return v == float64(cfg.Iterations*victims) }
				must["room messages replayed"] = func(v float64) bool { return v == float64(cfg.Iterations*victims*cfg.Missed) }
				if got := rep.Resumes[outcomeReplayed]; got != cfg.Iterations*victims {
					t.Errorf("resumes by outcome %v, want %d replayed", rep.Resumes, cfg.Iterations*victims)
				}
			}
			must["load client CPU"] = func(v float64) bool { return v >= 0 }
			for name, ok := range must {
				found := false
				for _, m := range rep.Measures {
					if m.Name == name {
						found = true
						if !ok(m.Value) {
							t.Errorf("%s = %v", name, m.Value)
						}
					}
				}
				if !found {
					t.Errorf("no measure %q", name)
				}
			}
		})
	}
}

// TestChatWithResets runs chat with a connection reset every 100ms through
// the fault proxy: the raw bots count each lost connection as an abnormal
// close; the SDK bots count it too, resume by themselves and count the
// resume by its outcome.
func TestChatWithResets(t *testing.T) {
	url, signer := startNode(t)
	for _, bots := range []string{"raw", "sdk"} {
		t.Run(bots, func(t *testing.T) {
			var log bytes.Buffer
			rep, err := Run(t.Context(), Config{Bots: bots, Scenario: "chat", Rooms: 2, RoomSize: 3, Rate: 10, Duration: 600 * time.Millisecond,
				Faults: Faults{ResetEvery: 100 * time.Millisecond}, URL: url, Signer: signer, Log: &log})
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			var table bytes.Buffer
			if err := rep.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", table.String())
			if rep.Closes["abnormal"] == 0 {
				t.Errorf("closes by code %v: want abnormal ones", rep.Closes)
			}
			resets := 0.0
			for _, m := range rep.Measures {
				if m.Name == "connections reset by --reset-every" {
					resets = m.Value
				}
			}
			if resets == 0 {
				t.Error("no connection reset by --reset-every")
			}
			if bots == "sdk" {
				total := 0
				for _, n := range rep.Resumes {
					total += n
				}
				if total == 0 {
					t.Errorf("resumes by outcome %v: want the SDK's resumes", rep.Resumes)
				}
			}
		})
	}
}

// TestBadTokenGetsAHint: a node that does not trust the load tool's key
// refuses its tokens, and the error says how to start the node.
func TestBadTokenGetsAHint(t *testing.T) {
	url, _ := startNode(t)
	_, err := Run(t.Context(), Config{Scenario: "echo", Clients: 1, Duration: time.Second, URL: url, Signer: testSigner()})
	if err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("Run with a foreign key: %v, want an error that points at --data-dir", err)
	}
}

// TestRateLimitedNodeGetsAHint: the default per-session limits throttle
// the load, and the error says which flags raise them.
func TestRateLimitedNodeGetsAHint(t *testing.T) {
	signer, err := token.LoadOrCreateDevKey(filepath.Join(t.TempDir(), "dev-signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{
		Verifier:  token.NewKeySet(map[string]ed25519.PublicKey{signer.KeyID(): signer.PublicKey()}),
		RoomTypes: room.BuiltinTypes(),
		Limits:    gateway.Limits{MsgRate: 5, MsgBurst: 5, FloodViolations: 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", gw)
	srv := httptest.NewServer(mux)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Close(ctx)
		srv.Close()
	}()
	_, err = Run(t.Context(), Config{Scenario: "echo", Clients: 1, Duration: time.Second,
		URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", Signer: signer})
	if err == nil || !strings.Contains(err.Error(), "--msg-rate") {
		t.Fatalf("Run against a throttled node: %v, want an error that points at --msg-rate", err)
	}
}

// TestReconnectCountsExpiredSessions: a node that holds no session after a
// cut (a seat hold of a millisecond) answers some or all of the resumes
// with not_found; every resume is counted under an outcome, and the
// victims go on with new sessions.
func TestReconnectCountsExpiredSessions(t *testing.T) {
	signer, err := token.LoadOrCreateDevKey(filepath.Join(t.TempDir(), "dev-signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	n := realtimetest.Start(t, signer, func(c *gateway.Config) { c.SeatHold = time.Millisecond })
	cfg := Config{Scenario: "reconnect", Clients: 6, RoomSize: 3, Iterations: 3, Missed: 2, URL: n.URL, Signer: signer}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	victims := 4
	if total := rep.Resumes[outcomeReplayed] + rep.Resumes[outcomeSnapshot] + rep.Resumes[outcomeExpired]; total != cfg.Iterations*victims {
		t.Errorf("resumes by outcome %v, want %d in all", rep.Resumes, cfg.Iterations*victims)
	}
	for _, note := range rep.Notes {
		if strings.Contains(note, "failed") {
			t.Errorf("note: %s", note)
		}
	}
}

// TestRunRefusesARemoteTargetWithoutTheFlag: the refusal names
// --allow-remote, and the flag lifts it (the check only: nothing dials).
func TestRunRefusesARemoteTargetWithoutTheFlag(t *testing.T) {
	_, err := Run(t.Context(), Config{Scenario: "echo", URL: "ws://10.0.0.1:7701/ws", Signer: testSigner()})
	if err == nil || !strings.Contains(err.Error(), "--allow-remote") {
		t.Fatalf("Run with a remote URL: %v, want an error naming --allow-remote", err)
	}
	for _, raw := range []string{"ws://10.0.0.1:7701/ws", "wss://game.example.com/ws"} {
		if got, err := TargetURL(t.Context(), raw, true); err != nil || got != raw {
			t.Errorf("TargetURL(%q, allowRemote) = %q, %v; want it as it is", raw, got, err)
		}
	}
	if _, err := TargetURL(t.Context(), "http://10.0.0.1/ws", true); err == nil {
		t.Error("TargetURL took an http:// URL")
	}
	if _, err := loopbackHTTPURL(t.Context(), "http://10.0.0.1:8080/admin", false); err == nil || !strings.Contains(err.Error(), "--allow-remote") {
		t.Errorf("a remote web URL: %v, want an error naming --allow-remote", err)
	}
}

// TestAnSDKRunCutShortStopsByItself: a run whose time is up before most of
// its SDK bots were dialed ends (with the error of an incomplete run)
// instead of waiting for bots that never started.
func TestAnSDKRunCutShortStopsByItself(t *testing.T) {
	url, signer := startNode(t)
	done := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), Config{URL: url, Signer: signer, Bots: "sdk", Scenario: "connect", Clients: 400, Concurrency: 1, RoomSize: 4, Duration: time.Millisecond})
		done <- err
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the run did not end a minute after its 1 ms")
	}
}
