package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
	"github.com/tandemhq/tandem/token"
)

// lockedBuffer is a program's output, written by its goroutine and read by
// the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// clusterDeadline bounds every wait of the cluster tests (10× what the
// waits take on a loaded 2-core machine).
const clusterDeadline = 20 * time.Second

// eventually polls cond until it holds, failing the test at the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(clusterDeadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("no %s within %s", what, clusterDeadline)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for correctness
	}
}

// program is a subcommand run by Main in a goroutine until the test ends.
type program struct {
	stdout, stderr *lockedBuffer
	done           chan int
}

func runProgram(t *testing.T, stdin string, args ...string) *program {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &program{stdout: new(lockedBuffer), stderr: new(lockedBuffer), done: make(chan int, 1)}
	go func() {
		p.done <- Main(ctx, args, nil, Stdio{Stdin: strings.NewReader(stdin), Stdout: p.stdout, Stderr: p.stderr}, Options{})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-p.done:
			if code != 0 {
				t.Errorf("%s exited %d\n%s", args[0], code, p.stderr)
			}
		case <-time.After(clusterDeadline):
			t.Errorf("%s did not stop within %s", args[0], clusterDeadline)
		}
	})
	return p
}

// waitLine waits for a line of stdout matching re and returns its first
// submatch.
func (p *program) waitLine(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	var m []string
	eventually(t, "output matching "+re.String(), func() bool {
		m = re.FindStringSubmatch(p.stdout.String())
		return m != nil
	})
	return m[1]
}

func runOnce(t *testing.T, stdin string, args ...string) {
	t.Helper()
	var out, errOut lockedBuffer
	if code := Main(t.Context(), args, nil, Stdio{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}, Options{}); code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
}

// adminAPI is an admin JSON API client with a logged-in session.
type adminAPI struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (a *adminAPI) call(method, path string, in, out any) int {
	a.t.Helper()
	var body bytes.Buffer
	if in != nil {
		_ = json.NewEncoder(&body).Encode(in)
	}
	req, _ := http.NewRequestWithContext(a.t.Context(), method, a.base+path, &body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

var (
	webURLLine      = regexp.MustCompile(`(?m)^web: +(http://\S+)/admin$`)
	realtimeURLLine = regexp.MustCompile(`(?m)^realtime: +(ws://\S+)$`)
	droppedMetric   = regexp.MustCompile(`(?m)^tandem_bus_events_dropped_total (\S+)$`)
)

// TestClusterRecoversFromANATSRestart stops the NATS server under a web
// server and a node, and starts it again on the same port and store: both
// reconnect by themselves, a command goes through, and the events of the
// outage are stored once the bus is back, none dropped.
func TestClusterRecoversFromANATSRestart(t *testing.T) {
	dir := t.TempDir()
	natsDir := filepath.Join(dir, "nats")
	emb, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Dir: natsDir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	natsURL := emb.ClientURL()
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	var restarted *natsbus.Embedded
	t.Cleanup(func() {
		if restarted != nil {
			restarted.Shutdown()
		}
	})

	db := "sqlite:" + filepath.Join(dir, "tandem.db")
	auditKey, kek := filepath.Join(dir, "audit-key.pem"), filepath.Join(dir, "kek")
	if _, err := token.LoadOrCreateKeyFile(auditKey); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKEKFile(kek); err != nil {
		t.Fatal(err)
	}
	runOnce(t, "", "migrate", "up", "--db", db)
	runOnce(t, "operator password 1\n", "admin", "create", "--db", db, "--audit-key", auditKey,
		"--admin-name", "op", "--role", "operator", "--password-stdin")
	web := runProgram(t, "", "web", "--db", db, "--audit-key", auditKey, "--key-encryption-key", kek,
		"--web-listen", "127.0.0.1:0", "--nats", natsURL, "--node-ttl", "2s")
	webURL := web.waitLine(t, webURLLine)
	node := runProgram(t, "", "realtime", "--listen", "127.0.0.1:0", "--node-id", "n1", "--nats", natsURL,
		"--node-ttl", "2s", "--node-heartbeat", "200ms", "--drain-timeout", "1s")
	nodeURL := node.waitLine(t, realtimeURLLine)

	jar, _ := cookiejar.New(nil)
	api := &adminAPI{t: t, base: webURL, hc: &http.Client{Jar: jar, Timeout: clusterDeadline}}
	if code := api.call(http.MethodPost, "/api/admin/v1/session", map[string]string{"name": "op", "password": "operator password 1"}, nil); code != http.StatusOK {
		t.Fatalf("operator login: %d", code)
	}
	auth, err := client.LoginGuest(t.Context(), client.AuthConfig{BaseURL: webURL}, "restart-device", client.NewDeviceSecret())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), clusterDeadline)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{URL: nodeURL, Token: auth.RealtimeTokenSource(), Locate: auth.RealtimeURLSource(),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	room, err := c.Join(ctx, client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"})
	if err != nil {
		t.Fatal(err)
	}
	type roomEvent struct {
		Kind     string `json:"kind"`
		PlayerID string `json:"player_id"`
	}
	roomEvents := func() []roomEvent {
		var d struct {
			Events []roomEvent `json:"events"`
		}
		api.call(http.MethodGet, "/api/admin/v1/rooms/"+room.ID(), nil, &d)
		return d.Events
	}
	eventually(t, "the room and its join stored", func() bool { return len(roomEvents()) >= 2 })

	// The outage: the player leaves the room meanwhile, an event the node
	// must hold until the bus is back.
	emb.Shutdown()
	if err := room.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	restarted, err = natsbus.StartEmbedded(natsbus.EmbeddedConfig{Dir: natsDir, Listen: u.Host})
	if err != nil {
		t.Fatalf("restart NATS on %s: %v", u.Host, err)
	}

	eventually(t, "the leave of the outage stored", func() bool {
		for _, e := range roomEvents() {
			if e.Kind == "room.left" && e.PlayerID == c.PlayerID() {
				return true
			}
		}
		return false
	})
	var sent []struct {
		ID string `json:"id"`
	}
	eventually(t, "a notice accepted after the restart", func() bool {
		return api.call(http.MethodPost, "/api/admin/v1/commands",
			map[string]string{"kind": "notice", "player_id": c.PlayerID(), "text": "back"}, &sent) == http.StatusAccepted
	})
	timeout := time.After(clusterDeadline)
	for notice := false; !notice; {
		select {
		case ev := <-c.Events():
			if n, ok := ev.(*client.Notice); ok {
				if n.Text != "back" {
					t.Errorf("notice %q after the restart, want %q", n.Text, "back")
				}
				notice = true
			}
		case <-timeout:
			t.Fatal("no notice after the NATS restart")
		}
	}
	metricsURL := "http://" + strings.TrimSuffix(strings.TrimPrefix(nodeURL, "ws://"), "/ws") + "/metrics"
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	_, _ = metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	if m := droppedMetric.FindStringSubmatch(metrics.String()); m == nil || m[1] != "0" {
		t.Errorf("tandem_bus_events_dropped_total: %v, want 0", m)
	}
}
