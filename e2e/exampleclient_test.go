package e2e

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestExampleClientsChat is the README walkthrough: two example clients
// log in as guests and chat in a relay room on `tandem dev`.
func TestExampleClientsChat(t *testing.T) {
	t.Parallel()
	dev := startDevArgs(t, bins.tandem, t.TempDir())
	devices := t.TempDir()
	guest := func(name string) []string {
		return []string{"--web", dev.web, "--device-file", filepath.Join(devices, name+".json")}
	}

	// Bob waits for one message; alice joins his room (join-or-create finds
	// it) and says hello.
	bob := startProc(t, "client bob", bins.client, append(guest("bob"), "--exit-after", "1")...)
	joined := bob.waitStdout(t, regexp.MustCompile(`(?m)^joined relay room (\S+) as (\S+)$`))
	room, bobID := joined[1], joined[2]
	alice := startProc(t, "client alice", bins.client, append(guest("alice"), "--say", "hello from alice")...)
	aliceID := alice.waitStdout(t, regexp.MustCompile(`(?m)^joined relay room `+regexp.QuoteMeta(room)+` as (\S+)$`))[1]

	if code := bob.waitExit(t); code != 0 {
		t.Fatalf("bob's client exited %d, want 0", code)
	}
	if want := "\n" + aliceID + ": hello from alice\n"; !strings.Contains(bob.stdout.String(), want) {
		t.Errorf("bob's client did not print %q", want)
	}
	// Alice keeps printing: she sees bob go.
	alice.waitStdout(t, regexp.MustCompile(`(?m)^\* `+regexp.QuoteMeta(bobID)+` left `))
	alice.signal(t, syscall.SIGINT)
	if code := alice.waitExit(t); code != 0 {
		t.Fatalf("alice's client exited %d after Ctrl-C, want 0", code)
	}

	// The device file keeps the identity: bob comes back as the same player.
	again := startProc(t, "client bob again", bins.client, guest("bob")...)
	again.waitStdout(t, regexp.MustCompile(`(?m)^joined relay room \S+ as `+regexp.QuoteMeta(bobID)+`$`))
	again.signal(t, syscall.SIGINT)
	if code := again.waitExit(t); code != 0 {
		t.Fatalf("bob's second client exited %d after Ctrl-C, want 0", code)
	}
}

// TestExampleClientMovesInTheArena: --arena steers right, and the client
// prints the position and heading the server computes.
func TestExampleClientMovesInTheArena(t *testing.T) {
	t.Parallel()
	dev := startDevArgs(t, bins.tandem, t.TempDir())
	carol := startProc(t, "client carol", bins.client, "--arena", "--web", dev.web, "--device-file", filepath.Join(t.TempDir(), "carol.json"))
	carol.waitStdout(t, regexp.MustCompile(`(?m)^tick \d+: \S+ at \(\d+,\d+\) heading \(1,0\)$`))
	carol.signal(t, syscall.SIGTERM)
	if code := carol.waitExit(t); code != 0 {
		t.Fatalf("carol's client exited %d after SIGTERM, want 0", code)
	}
}

// TestExampleClientCallsTheCustomGameRPC: --rpc calls a game's RPC and
// prints its answer.
func TestExampleClientCallsTheCustomGameRPC(t *testing.T) {
	t.Parallel()
	game := startDev(t, bins.customgame, t.TempDir())
	stdout, stderr, code := runProg(t, bins.client, "--url", game.url, "--token", game.tokenFor(t, "alice", "--name", "Alice"), "--rpc", "whoami")
	if code != 0 {
		t.Fatalf("client --rpc whoami: exit %d: %s", code, stderr)
	}
	if want := `{"id":"alice","name":"Alice"}` + "\n"; stdout != want {
		t.Errorf("client --rpc whoami printed %q, want %q", stdout, want)
	}
}

// TestExampleClientsFindAMatch is the walkthrough's matchmaking step: an
// operator makes a queue, two example clients join it and are matched
// into one room, where one hears the other.
func TestExampleClientsFindAMatch(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	dev := startDevArgs(t, bins.tandem, dataDir)
	runWithStdin(t, "operator password 1\n", bins.tandem, "admin", "create",
		"--db", "sqlite:"+filepath.Join(dataDir, "tandem.db"), "--audit-key", filepath.Join(dataDir, "audit-key.pem"),
		"--admin-name", "op", "--role", "operator", "--password-stdin")
	op := loginOperator(t, dev.web, "op", "operator password 1")
	if code := op.do(http.MethodPut, "/api/admin/v1/matchmaking/queues/duel",
		map[string]any{"room_type": "relay", "teams": 2, "team_size": 1}, nil); code != http.StatusOK {
		t.Fatalf("put queue: %d", code)
	}
	devices := t.TempDir()
	player := func(name string, extra ...string) *proc {
		args := append([]string{"--web", dev.web, "--device-file", filepath.Join(devices, name+".json"), "--queue", "duel"}, extra...)
		return startProc(t, "client "+name, bins.client, args...)
	}
	dave := player("dave", "--exit-after", "1")
	dave.waitStdout(t, regexp.MustCompile(`(?m)^\* ticket in duel: searching`))
	erin := player("erin", "--exit-after", "1")
	room := erin.waitStdout(t, regexp.MustCompile(`(?m)^joined relay room (\S+) as `))[1]
	dave.waitStdout(t, regexp.MustCompile(`(?m)^joined relay room `+regexp.QuoteMeta(room)+` as `))
	// Both are in: a third player says hello in their room.
	frank := startProc(t, "client frank", bins.client, "--web", dev.web, "--device-file", filepath.Join(devices, "frank.json"),
		"--room", room, "--say", "hello from frank", "--exit-after", "1")
	frankID := frank.waitStdout(t, regexp.MustCompile(`(?m)^joined relay room \S+ as (\S+)$`))[1]
	for _, p := range []*proc{dave, erin} {
		if code := p.waitExit(t); code != 0 {
			t.Fatalf("%s exited %d, want 0", p.name, code)
		}
		if want := "\n" + frankID + ": hello from frank\n"; !strings.Contains(p.stdout.String(), want) {
			t.Errorf("%s did not print %q", p.name, want)
		}
	}
	frank.signal(t, syscall.SIGINT)
	frank.waitExit(t)
}
