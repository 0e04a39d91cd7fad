package e2e

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandemhq/tandem/faultproxy"
	"github.com/tandemhq/tandem/internal/pgtest"
	client "github.com/tandemhq/tandem/sdk/go"
)

// matchmake runs Matchmake in a goroutine; wait returns its room.
type matchmake struct {
	done   chan struct{}
	room   *client.Room
	err    error
	states []string
	mu     sync.Mutex
}

func startMatchmake(t *testing.T, c *client.Client, queue string) *matchmake {
	t.Helper()
	m := &matchmake{done: make(chan struct{})}
	ctx := withDeadline(t)
	go func() {
		defer close(m.done)
		m.room, m.err = c.Matchmake(ctx, client.TicketRequest{Queue: queue, Progress: func(s client.TicketStatus) {
			m.mu.Lock()
			m.states = append(m.states, s.State)
			m.mu.Unlock()
		}})
	}()
	return m
}

func (m *matchmake) wait(t *testing.T) *client.Room {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(deadline):
		t.Fatalf("no match within %s", deadline)
	}
	if m.err != nil {
		t.Fatalf("matchmake: %v (states %v)", m.err, m.states)
	}
	return m.room
}

func (m *matchmake) searching() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.states) > 0 && m.states[len(m.states)-1] == "searching"
}

// queueDepth reads a node's tandem_mm_queue_depth of queue from its
// metrics: ok is false when the node does not run that queue's matcher.
func queueDepth(t *testing.T, nodeURL, queue string) (depth string, ok bool) {
	t.Helper()
	u, err := url.Parse(nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + u.Host + "/metrics")
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	prefix := `tandem_mm_queue_depth{queue="` + queue + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), prefix); found {
			return v, true
		}
	}
	return "", false
}

// Players on two realtime processes are matched into one room (one of them
// moves to the room's node); the node running a queue's matcher is killed
// with tickets waiting, one of whose players loses its connection while
// searching, and the other node takes the queue over and matches them.
func TestMatchmakingAcrossNodesSurvivesAKilledMatcherNode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := &cluster{nats: startNATSServer(t), db: pgtest.URL(t), auditKey: writeAuditKey(t, dir), kek: writeKeyEncryptionKey(t, dir)}
	runWithStdin(t, "operator password 1\n", bins.tandem, "admin", "create", "--db", c.db, "--audit-key", c.auditKey,
		"--admin-name", "op", "--role", "operator", "--password-stdin")
	web := c.startWeb(t, "tandem web")
	webURL := web.waitStdout(t, webLine)[1]
	nodes := map[string]*proc{}
	urls := map[string]string{}
	for _, id := range []string{"a", "b"} {
		nodes[id], urls[id] = c.startNode(t, id, "--match-tick", "100ms")
	}
	op := loginOperator(t, webURL, "op", "operator password 1")
	for name, q := range map[string]map[string]any{
		"duel": {"room_type": "relay", "teams": 2, "team_size": 1},
		"trio": {"room_type": "relay", "min_players": 3, "max_players": 3},
	} {
		if code := op.do(http.MethodPut, "/api/admin/v1/matchmaking/queues/"+name, q, nil); code != http.StatusOK {
			t.Fatalf("put queue %s: %d", name, code)
		}
	}
	holder := func(queue string) string {
		for id, u := range urls {
			if _, ok := queueDepth(t, u, queue); ok {
				return id
			}
		}
		return ""
	}
	waitFor(t, "a node running the duel and trio matchers", func() bool { return holder("duel") != "" && holder("trio") != "" })

	// One player on each node: matched into one room, whichever node it
	// is on.
	p1, _ := guest(t, webURL, "device-1", urls["a"])
	p2, _ := guest(t, webURL, "device-2", urls["b"])
	m1, m2 := startMatchmake(t, p1, "duel"), startMatchmake(t, p2, "duel")
	r1, r2 := m1.wait(t), m2.wait(t)
	if r1.ID() != r2.ID() {
		t.Fatalf("players matched into rooms %s and %s, want one", r1.ID(), r2.ID())
	}
	// The room hears both: a message from one reaches the other.
	if err := r1.Send(withDeadline(t), "hello", []byte("from p1")); err != nil {
		t.Fatal(err)
	}
	for {
		if msg := next[*client.RoomMessage](t, p2); msg.Topic == "hello" {
			break
		}
	}
	waitFor(t, "the match stored by the web server", func() bool {
		var view struct {
			Recent []struct {
				RoomID string `json:"room_id"`
			} `json:"recent"`
		}
		return op.do(http.MethodGet, "/api/admin/v1/matchmaking/queues/duel", nil, &view) == http.StatusOK &&
			len(view.Recent) == 1 && view.Recent[0].RoomID == r1.ID()
	})

	// Two tickets wait in trio on the node that does not run its matcher;
	// one of them reaches its node through a proxy.
	dead := holder("trio")
	alive := "a"
	if dead == "a" {
		alive = "b"
	}
	node, err := url.Parse(urls[alive])
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.New(faultproxy.Config{Target: node.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	p3, _ := guest(t, webURL, "device-3", "ws://"+proxy.Addr()+"/ws")
	p4, _ := guest(t, webURL, "device-4", urls[alive])
	m3, m4 := startMatchmake(t, p3, "trio"), startMatchmake(t, p4, "trio")
	waitFor(t, "two tickets searching in trio", func() bool {
		d, _ := queueDepth(t, urls[dead], "trio")
		return d == "2" && m3.searching() && m4.searching()
	})
	nodes[dead].signal(t, syscall.SIGKILL)
	nodes[dead].waitExit(t)
	// Player 3 loses its connection while searching and resumes.
	conns, err := proxy.WaitConns(withDeadline(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	conns[0].Reset()
	next[*client.Resumed](t, p3)

	p5, _ := guest(t, webURL, "device-5", urls[alive])
	m5 := startMatchmake(t, p5, "trio")
	r3, r4, r5 := m3.wait(t), m4.wait(t), m5.wait(t)
	if r3.ID() != r4.ID() || r4.ID() != r5.ID() {
		t.Fatalf("trio matched into rooms %s, %s, %s, want one", r3.ID(), r4.ID(), r5.ID())
	}
	if got := holder("trio"); got != alive {
		t.Errorf("trio's matcher runs on %q, want the surviving node %q", got, alive)
	}
}
