package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
)

func TestDevServesTwoClientsInARelayRoomAndExitsZeroOnSIGTERM(t *testing.T) {
	t.Parallel()
	dev := startDev(t, bins.tandem, t.TempDir())
	alice := dial(t, dev.url, dev.tokenFor(t, "alice"))
	bob := dial(t, dev.url, dev.tokenFor(t, "bob"))

	ra, err := alice.Join(withDeadline(t), client.JoinOptions{RoomType: "relay"}) // join-or-create
	if err != nil {
		t.Fatalf("alice joins a relay room: %v", err)
	}
	rb, err := bob.Join(withDeadline(t), client.JoinOptions{RoomID: ra.ID()})
	if err != nil {
		t.Fatalf("bob joins room %s: %v", ra.ID(), err)
	}
	if got := next[*client.Joined](t, bob).Players; !cmp.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("bob joined a room with players %v, want [alice bob]", got)
	}
	if e := next[*client.RoomEvent](t, alice); e.PlayerID != "bob" || e.Kind != protocol.RoomEventKind_ROOM_EVENT_JOINED {
		t.Errorf("alice saw %s %s, want bob joined", e.PlayerID, e.Kind)
	}

	if err := ra.Send(withDeadline(t), "chat", []byte("hi bob"), client.Others()); err != nil {
		t.Fatal(err)
	}
	if err := rb.Send(withDeadline(t), "chat", []byte("hi alice"), client.Others()); err != nil {
		t.Fatal(err)
	}
	type msg struct{ From, Topic, Data string }
	got := func(c *client.Client) msg {
		m := next[*client.RoomMessage](t, c)
		return msg{m.From, m.Topic, string(m.Data)}
	}
	if diff := cmp.Diff(msg{"alice", "chat", "hi bob"}, got(bob)); diff != "" {
		t.Errorf("bob's message (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(msg{"bob", "chat", "hi alice"}, got(alice)); diff != "" {
		t.Errorf("alice's message (-want +got):\n%s", diff)
	}

	dev.signal(t, syscall.SIGTERM)
	waitNodeDrained(t, alice)
	waitNodeDrained(t, bob)
	if code := dev.waitExit(t); code != 0 {
		t.Fatalf("tandem dev exited %d after SIGTERM, want 0", code)
	}
}

func TestDevCreatesItsDataDirPrivateAndPrintsAWorkingToken(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	dev := startDev(t, bins.tandem, dir)

	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{dir, os.ModeDir | 0o700},
		{filepath.Join(dir, "dev-signing-key.pem"), 0o600},
	} {
		info, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != f.mode {
			t.Errorf("%s has mode %s, want %s", f.path, info.Mode(), f.mode)
		}
	}

	c := dial(t, dev.url, dev.token)
	if got := c.PlayerID(); got != "dev-player" {
		t.Errorf("the token tandem dev printed is for player %q, want dev-player", got)
	}
	dev.stop(t)
}

func TestVersionPrintsTheVersionAndExitsZero(t *testing.T) {
	t.Parallel()
	for name, bin := range map[string]string{"tandem": bins.tandem, "customgame": bins.customgame} {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runProg(t, bin, "version")
			if code != 0 {
				t.Fatalf("%s version: exit %d, stderr %q", name, code, stderr)
			}
			if want := "tandem " + tandem.Version + "\n"; stdout != want {
				t.Errorf("%s version printed %q, want %q", name, stdout, want)
			}
		})
	}
}

func TestUnknownCommandExitsTwo(t *testing.T) {
	t.Parallel()
	_, stderr, code := runProg(t, bins.tandem, "frobnicate")
	if code != 2 {
		t.Errorf("tandem frobnicate: exit %d, want 2", code)
	}
	if want := `unknown command "frobnicate"`; !strings.Contains(stderr, want) {
		t.Errorf("tandem frobnicate: stderr %q does not say %q", stderr, want)
	}
}

var (
	devWebLine   = regexp.MustCompile(`(?m)^web: +(http://\S+)/admin$`)
	devAdminLine = regexp.MustCompile(`(?m)^admin: +log in as "admin" with password (\S+) `)
)

func TestDevCreatesTheFirstAdminOnceAndItsPasswordLogsIn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dev := startDev(t, bins.tandem, dir)
	webURL := dev.waitStdout(t, devWebLine)[1]
	password := dev.waitStdout(t, devAdminLine)[1]
	for _, f := range []string{"audit-key.pem", "key-encryption-key", "tandem.db"} {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f != "tandem.db" && info.Mode() != 0o600 {
			t.Errorf("%s has mode %s, want 0600", f, info.Mode())
		}
	}

	body, _ := json.Marshal(map[string]string{"name": "admin", "password": password})
	resp, err := http.Post(webURL+"/api/admin/v1/session", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		MFA string `json:"mfa"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || got.MFA != "enrol" {
		t.Fatalf("login with the printed password: %s, %+v, %v; want 200 asking to enrol MFA", resp.Status, got, err)
	}
	dev.stop(t)

	// A second start on the same data directory keeps the admin and prints
	// no password: there are no default credentials, ever.
	again := startDev(t, bins.tandem, dir)
	again.waitStdout(t, devWebLine)
	if strings.Contains(again.stdout.String(), "admin:") {
		t.Errorf("a restart printed an admin password:\n%s", again.stdout.String())
	}
	again.stop(t)
}
