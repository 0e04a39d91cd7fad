package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
)

// natsListenLine is where nats-server logs its client port.
var natsListenLine = regexp.MustCompile(`Listening for client connections on (\S+:\d+)`)

// startNATSServer runs the nats-server built from go.mod's version with
// JetStream in a temporary directory, on a random port, and returns its
// URL.
func startNATSServer(t *testing.T) string {
	t.Helper()
	p := startProc(t, "nats-server", bins.natsServer, "-js", "-sd", t.TempDir(), "-a", "127.0.0.1", "-p", "-1")
	addr := p.waitStderr(t, natsListenLine)[1]
	return "nats://" + addr
}

// cluster is a test cluster of separate processes on one PostgreSQL
// database and one nats-server.
type cluster struct {
	nats, db, auditKey, kek string
}

const clusterNodeTTL = "2s"

func (c *cluster) startWeb(t *testing.T, name string) *proc {
	t.Helper()
	p := startProc(t, name, bins.tandem, "web", "--db", c.db, "--audit-key", c.auditKey, "--key-encryption-key", c.kek,
		"--web-listen", "127.0.0.1:0", "--nats", c.nats, "--node-ttl", clusterNodeTTL, "--shutdown-timeout", "2s")
	p.waitStdout(t, webLine)
	return p
}

func (c *cluster) startNode(t *testing.T, id string, extra ...string) (*proc, string) {
	t.Helper()
	args := append([]string{"realtime", "--listen", "127.0.0.1:0", "--node-id", id,
		"--nats", c.nats, "--node-ttl", clusterNodeTTL, "--node-heartbeat", "200ms", "--drain-timeout", drainTimeout.String(),
		"--seat-hold", "30s"}, extra...)
	p := startProc(t, "tandem realtime "+id, bins.tandem, args...)
	return p, p.waitStdout(t, realtimeLine)[1]
}

// operatorAPI is an admin JSON API client logged in as an operator.
type operatorAPI struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (a *operatorAPI) do(method, path string, in, out any) int {
	a.t.Helper()
	var body bytes.Buffer
	if in != nil {
		_ = json.NewEncoder(&body).Encode(in)
	}
	req, err := http.NewRequestWithContext(withDeadline(a.t), method, a.base+path, &body)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0 // the replica is gone; callers poll or fail on the status
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			a.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func loginOperator(t *testing.T, base, name, password string) *operatorAPI {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	a := &operatorAPI{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: deadline}}
	if code := a.do(http.MethodPost, "/api/admin/v1/session", map[string]string{"name": name, "password": password}, nil); code != http.StatusOK {
		t.Fatalf("operator login at %s: %d", base, code)
	}
	return a
}

// waitFor polls cond until it holds, failing at the deadline with what.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("no %s within %s", what, deadline)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for correctness
	}
}

// guest logs a new guest in at web and dials nodeURL with the SDK, which
// asks the web server for a node again when it cannot reach this one.
func guest(t *testing.T, web, device, nodeURL string) (*client.Client, string) {
	t.Helper()
	auth, err := client.LoginGuest(withDeadline(t), client.AuthConfig{BaseURL: web}, device, client.NewDeviceSecret())
	if err != nil {
		t.Fatalf("guest login %s: %v", device, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{
		URL:        nodeURL,
		Token:      auth.RealtimeTokenSource(),
		Locate:     auth.RealtimeURLSource(),
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", nodeURL, device, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, auth.PlayerID()
}

func TestClusterOfProcessesSurvivesAKilledNodeAndAKilledWebReplica(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := &cluster{nats: startNATSServer(t), db: pgtest.URL(t), auditKey: writeAuditKey(t, dir), kek: writeKeyEncryptionKey(t, dir)}
	runWithStdin(t, "operator password 1\n", bins.tandem, "admin", "create", "--db", c.db, "--audit-key", c.auditKey,
		"--admin-name", "op", "--role", "operator", "--password-stdin")
	webA, webB := c.startWeb(t, "tandem web A"), c.startWeb(t, "tandem web B")
	webAURL, webBURL := webA.waitStdout(t, webLine)[1], webB.waitStdout(t, webLine)[1]
	nodeA, urlA := c.startNode(t, "a")
	nodeB, urlB := c.startNode(t, "b")
	opB := loginOperator(t, webBURL, "op", "operator password 1")

	// Two players on node a in one room, a third on node b joins it there
	// by a seat reservation and moves to node a.
	p1, id1 := guest(t, webAURL, "device-1", urlA)
	p2, id2 := guest(t, webBURL, "device-2", urlA)
	p3, id3 := guest(t, webAURL, "device-3", urlB)
	ctx := withDeadline(t)
	room, err := p1.Join(ctx, client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Join(ctx, client.JoinOptions{RoomID: room.ID()}); err != nil {
		t.Fatal(err)
	}
	roomListed := func(want bool, players int) func() bool {
		return func() bool {
			var rooms []struct {
				ID      string   `json:"id"`
				Node    string   `json:"node"`
				Players []string `json:"players"`
			}
			if opB.do(http.MethodGet, "/api/admin/v1/rooms", nil, &rooms) != http.StatusOK {
				return false
			}
			i := slices.IndexFunc(rooms, func(r struct {
				ID      string   `json:"id"`
				Node    string   `json:"node"`
				Players []string `json:"players"`
			}) bool {
				return r.ID == room.ID()
			})
			if !want {
				return i < 0
			}
			return i >= 0 && rooms[i].Node == "a" && len(rooms[i].Players) == players
		}
	}
	// The directory is written a moment after the room changes: player 3
	// looks the room up once it is listed, as a player told its id would.
	waitFor(t, "room of node a with two players in the directory", roomListed(true, 2))
	if _, err := p3.Join(ctx, client.JoinOptions{RoomID: room.ID()}); err != nil {
		t.Fatalf("player 3 on node b joining a room of node a: %v", err)
	}
	waitFor(t, "room of node a with three players in the directory", roomListed(true, 3))

	// SIGKILL node a: its room leaves the directory, and each of its
	// players, failing to reach it, is sent to node b by the web server,
	// told node_gone there, and starts a new session on node b.
	nodeA.signal(t, syscall.SIGKILL)
	nodeA.waitExit(t)
	waitFor(t, "killed node's room gone from the directory", roomListed(false, 0))
	for _, p := range []*client.Client{p1, p2, p3} {
		lost := next[*client.SessionLost](t, p)
		if !slices.Contains(lost.Rooms, room.ID()) {
			t.Errorf("%s: session lost with rooms %v, want %s", p.PlayerID(), lost.Rooms, room.ID())
		}
		if ce := (*client.CloseError)(nil); !errors.As(lost.Err, &ce) || ce.Code != protocol.CloseNodeGone {
			t.Errorf("%s: session lost with %v, want node b's node_gone", p.PlayerID(), lost.Err)
		}
	}
	again, err := p1.Join(withDeadline(t), client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"})
	if err != nil {
		t.Fatalf("rejoin on node b: %v", err)
	}
	if _, err := p2.Join(withDeadline(t), client.JoinOptions{RoomID: again.ID()}); err != nil {
		t.Fatalf("second player rejoining on node b: %v", err)
	}

	// SIGKILL web replica A: the jobs go on in B. A notice sent through B
	// reaches its player exactly once.
	webA.signal(t, syscall.SIGKILL)
	webA.waitExit(t)
	var sent []struct {
		ID string `json:"id"`
	}
	if code := opB.do(http.MethodPost, "/api/admin/v1/commands",
		map[string]string{"kind": "notice", "player_id": id3, "text": "maintenance soon"}, &sent); code != http.StatusAccepted || len(sent) != 1 {
		t.Fatalf("notice through web B: %d %v", code, sent)
	}
	if n := next[*client.Notice](t, p3); n.Text != "maintenance soon" {
		t.Errorf("notice text %q", n.Text)
	}
	waitFor(t, "the notice delivered", func() bool {
		var cmds []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
		opB.do(http.MethodGet, "/api/admin/v1/commands", nil, &cmds)
		return len(cmds) > 0 && cmds[0].ID == sent[0].ID && cmds[0].State == "delivered"
	})

	// A player arriving after web A died: its session's events are stored
	// by web B's consumer.
	_, id4 := guest(t, webBURL, "device-4", urlB)

	// Every session the players opened is stored once: p1 and p2 opened one
	// on a and one on b; p3 one on b, one on a (the move) and one on b.
	wantOpened := map[string]int{id1: 2, id2: 2, id3: 3, id4: 1}
	var got map[string]int
	for end := time.Now().Add(deadline); fmt.Sprint(got) != fmt.Sprint(wantOpened); {
		if time.Now().After(end) {
			t.Fatalf("session.opened events stored per player: %v, want %v\nstored events:\n%s", got, wantOpened, dumpEvents(t, c.db))
		}
		time.Sleep(20 * time.Millisecond) // polling interval
		got = sessionsOpened(t, c.db, id1, id2, id3, id4)
	}

	// A drain command from the console drains node b as SIGTERM would:
	// its players are told node_draining and the process exits 0.
	if code := opB.do(http.MethodPost, "/api/admin/v1/commands", map[string]string{"kind": "drain", "node": "b"}, nil); code != http.StatusAccepted {
		t.Fatalf("drain through web B: %d", code)
	}
	if code := nodeB.waitExit(t); code != 0 {
		t.Errorf("node b exited %d after a drain command, want 0", code)
	}
}

// sessionsOpened counts the stored session.opened events of each player.
func sessionsOpened(t *testing.T, db string, players ...string) map[string]int {
	t.Helper()
	conn, err := pgx.Connect(withDeadline(t), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	got := make(map[string]int, len(players))
	for _, p := range players {
		var n int
		if err := conn.QueryRow(withDeadline(t), `SELECT count(*) FROM cluster_events WHERE kind = 'session.opened' AND player_id = $1`, p).Scan(&n); err != nil {
			t.Fatal(err)
		}
		got[p] = n
	}
	return got
}

// dumpEvents lists the stored events, for a failure's message.
func dumpEvents(t *testing.T, db string) string {
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		return err.Error()
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT id, node, kind, player_id, at FROM cluster_events ORDER BY at`)
	if err != nil {
		return err.Error()
	}
	var b bytes.Buffer
	for rows.Next() {
		var id, node, kind, player string
		var at time.Time
		if err := rows.Scan(&id, &node, &kind, &player, &at); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "%s %s %s %s %s\n", at.Format("15:04:05.000"), node, kind, player, id)
	}
	return b.String()
}
