package e2e

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestExampleClientsChat is the README walkthrough: two example clients
// chat in a relay room on `tandem dev`.
func TestExampleClientsChat(t *testing.T) {
	t.Parallel()
	dev := startDev(t, bins.tandem, t.TempDir())

	// Bob waits for one message; alice joins his room (join-or-create finds
	// it) and says hello.
	bob := startProc(t, "client bob", bins.client, "--url", dev.url, "--token", dev.tokenFor(t, "bob"), "--exit-after", "1")
	room := bob.waitStdout(t, regexp.MustCompile(`(?m)^joined relay room (\S+) as bob$`))[1]
	alice := startProc(t, "client alice", bins.client, "--url", dev.url, "--token", dev.tokenFor(t, "alice"), "--say", "hello from alice")
	alice.waitStdout(t, regexp.MustCompile(`(?m)^joined relay room `+regexp.QuoteMeta(room)+` as alice$`))

	if code := bob.waitExit(t); code != 0 {
		t.Fatalf("bob's client exited %d, want 0", code)
	}
	if want := "\nalice: hello from alice\n"; !strings.Contains(bob.stdout.String(), want) {
		t.Errorf("bob's client did not print %q", want)
	}
	// Alice keeps printing: she sees bob go.
	alice.waitStdout(t, regexp.MustCompile(`(?m)^\* bob left `))
	alice.signal(t, syscall.SIGINT)
	if code := alice.waitExit(t); code != 0 {
		t.Fatalf("alice's client exited %d after Ctrl-C, want 0", code)
	}
}

// TestExampleClientMovesInTheArena: --arena steers right, and the client
// prints the position and heading the server computes.
func TestExampleClientMovesInTheArena(t *testing.T) {
	t.Parallel()
	dev := startDev(t, bins.tandem, t.TempDir())
	carol := startProc(t, "client carol", bins.client, "--arena", "--url", dev.url, "--token", dev.tokenFor(t, "carol"))
	carol.waitStdout(t, regexp.MustCompile(`(?m)^tick \d+: carol at \(\d+,\d+\) heading \(1,0\)$`))
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
