package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/conformance/harness"
	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
)

// waitLimit bounds every wait: generous, as a loaded machine is slow.
const waitLimit = 30 * time.Second

// api is a harness served in process on 127.0.0.1:0, as the command
// serves it, stopped at the test's end.
type api struct {
	t    *testing.T
	base string
}

func startHarness(t *testing.T, cfg harness.Config) *api {
	t.Helper()
	cfg.Scenarios = "../scenarios"
	ln, err := harness.ListenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- harness.Serve(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &api{t: t, base: "http://" + ln.Addr().String()}
}

// call sends body as JSON and decodes the answer into out (when not nil);
// it returns the status.
func (a *api) call(method, path string, body, out any) int {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// must calls and fails the test unless the status is want.
func (a *api) must(want int, method, path string, body, out any) {
	a.t.Helper()
	var raw json.RawMessage
	if got := a.call(method, path, body, &raw); got != want {
		a.t.Fatalf("%s %s: status %d (%s), want %d", method, path, got, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatal(err)
		}
	}
}

func (a *api) start(name string) harness.ScenarioStarted {
	a.t.Helper()
	var s harness.ScenarioStarted
	a.must(http.StatusCreated, "POST", "/scenarios", map[string]string{"name": name}, &s)
	return s
}

func (a *api) proxy(id, client, node string) string {
	a.t.Helper()
	var out struct{ URL string }
	a.must(http.StatusCreated, "POST", "/scenarios/"+id+"/proxies", map[string]string{"client": client, "node": node}, &out)
	return out.URL
}

type connections struct{ Accepted, Open int }

func (a *api) connections(id, client, node string) connections {
	a.t.Helper()
	var c connections
	a.must(http.StatusOK, "GET", "/scenarios/"+id+"/proxies/"+client+"/"+node, nil, &c)
	return c
}

// dial connects player with sdk/go as another language's driver would: a
// token from the API at every connect, each node's address routed to the
// client's proxy in front of it.
func (a *api) dial(id, player, url string, proxies map[string]string) *events {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{
		URL: url,
		Token: func(ctx context.Context) (string, error) {
			var out struct{ Token string }
			if st := a.call("POST", "/scenarios/"+id+"/tokens", map[string]string{"player": player}, &out); st != http.StatusOK {
				return "", fmt.Errorf("token: status %d", st)
			}
			return out.Token, nil
		},
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			px, ok := proxies[addr]
			if !ok {
				return nil, fmt.Errorf("no proxy for %s", addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, px)
		},
		MinBackoff:  time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
		AckInterval: 10 * time.Millisecond,
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return logEvents(a.t, c)
}

// hostOf is the host:port of a ws:// URL.
func hostOf(t *testing.T, u string) string {
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}

func TestASingleNodeScenarioRunsThroughTheAPI(t *testing.T) {
	a := startHarness(t, harness.Config{})
	s := a.start("exchange")
	if len(s.Nodes) != 1 || s.Nodes["a"].URL == "" || s.Nodes["a"].MetricsURL == "" {
		t.Fatalf("nodes %+v, want node a with its URLs", s.Nodes)
	}
	node := s.Nodes["a"]
	px := a.proxy(s.ID, "alice", "a")
	var again struct{ URL string }
	a.must(http.StatusOK, "POST", "/scenarios/"+s.ID+"/proxies", map[string]string{"client": "alice", "node": "a"}, &again)
	if again.URL != px {
		t.Errorf("asked again, the proxy is %s, want the same %s", again.URL, px)
	}

	alice := a.dial(s.ID, "alice", node.URL, map[string]string{hostOf(t, node.URL): hostOf(t, px)})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := alice.c.Join(ctx, client.JoinOptions{RoomType: "relay"}); err != nil {
		t.Fatal(err)
	}
	if c := a.connections(s.ID, "alice", "a"); c != (connections{1, 1}) {
		t.Errorf("connections %+v, want 1 accepted, 1 open", c)
	}

	a.must(http.StatusNoContent, "POST", "/scenarios/"+s.ID+"/proxies/alice/a/fault", harness.Fault{Op: "reset"}, nil)
	alice.waitFor(t, "resumed", func(ev client.Event) bool { _, ok := ev.(*client.Resumed); return ok })
	waitFor(t, "2 connections accepted, 1 open", func() bool { return a.connections(s.ID, "alice", "a") == connections{2, 1} })

	a.must(http.StatusNoContent, "POST", "/scenarios/"+s.ID+"/drain", map[string]any{"node": "a", "timeout_ms": 1}, nil)
	alice.waitFor(t, "disconnected with node_draining", func(ev client.Event) bool {
		d, ok := ev.(*client.Disconnected)
		var ce *client.CloseError
		return ok && errors.As(d.Err, &ce) && ce.Code == protocol.CloseNodeDraining
	})
	var closes map[string]int
	a.must(http.StatusOK, "GET", "/scenarios/"+s.ID+"/closes?node=a", nil, &closes)
	if closes["node_draining"] < 1 {
		t.Errorf("closes %v, want node_draining at least 1", closes)
	}
	alice.close()

	a.must(http.StatusNoContent, "DELETE", "/scenarios/"+s.ID, nil, nil)
	a.must(http.StatusNotFound, "GET", "/scenarios/"+s.ID+"/closes?node=a", nil, nil)
	if nc, err := net.Dial("tcp", hostOf(t, node.URL)); err == nil {
		nc.Close()
		t.Error("the node still takes connections after DELETE")
	}
}

// TestAClusterScenarioRunsThroughTheAPI: a client on node a joins a room
// of node b through its proxies: the seat reservation takes it to b.
func TestAClusterScenarioRunsThroughTheAPI(t *testing.T) {
	a := startHarness(t, harness.Config{})
	s := a.start("moved")
	if len(s.Nodes) != 2 {
		t.Fatalf("nodes %+v, want a and b", s.Nodes)
	}
	na, nb := s.Nodes["a"], s.Nodes["b"]
	bob := a.dial(s.ID, "bob", nb.URL, map[string]string{hostOf(t, nb.URL): hostOf(t, a.proxy(s.ID, "bob", "b"))})
	defer bob.close()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	r, err := bob.c.Join(ctx, client.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"})
	if err != nil {
		t.Fatal(err)
	}

	alice := a.dial(s.ID, "alice", na.URL, map[string]string{
		hostOf(t, na.URL): hostOf(t, a.proxy(s.ID, "alice", "a")),
		hostOf(t, nb.URL): hostOf(t, a.proxy(s.ID, "alice", "b")),
	})
	defer alice.close()
	waitFor(t, "alice to join bob's room", func() bool {
		_, err := alice.c.Join(ctx, client.JoinOptions{RoomID: r.ID()})
		var se *client.ServerError
		if errors.As(err, &se) && (se.Code == client.CodeNotFound || se.Code == client.CodeUnavailable) {
			return false // the directory does not know the room yet
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	})
	waitFor(t, "alice's connection to a closed, hers to b open", func() bool {
		return a.connections(s.ID, "alice", "a") == connections{1, 0} && a.connections(s.ID, "alice", "b") == connections{1, 1}
	})

	resp, err := http.Get(nb.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "tandem_realtime_") {
		t.Errorf("metrics: %d %.200s", resp.StatusCode, body)
	}
}

func TestBadRequestsAreAnsweredWithACodeAndAMessage(t *testing.T) {
	a := startHarness(t, harness.Config{})
	s := a.start("exchange")
	a.proxy(s.ID, "alice", "a")
	sc := "/scenarios/" + s.ID
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"POST", "/scenarios", map[string]string{"name": "no_such_scenario"}, 404, "not_found"},
		{"POST", "/scenarios", map[string]string{"name": "../scenarios/exchange"}, 400, "invalid"},
		{"POST", "/scenarios", map[string]string{"nom": "exchange"}, 400, "invalid"},
		{"POST", "/scenarios", "not an object", 400, "invalid"},
		{"GET", "/scenarios/nope/closes", nil, 404, "not_found"},
		{"POST", sc + "/tokens", map[string]string{}, 400, "invalid"},
		{"POST", sc + "/tokens", map[string]string{"player": "p", "kind": "stolen"}, 400, "invalid"},
		{"POST", sc + "/proxies", map[string]string{"client": "bob", "node": "z"}, 404, "not_found"},
		{"POST", sc + "/proxies/alice/a/fault", map[string]string{"op": "teleport"}, 400, "invalid"},
		{"POST", sc + "/proxies/alice/a/fault", map[string]string{"op": "silence"}, 400, "invalid"},
		{"POST", sc + "/proxies/alice/a/fault", map[string]string{"op": "reset", "direction": "sideways"}, 400, "invalid"},
		{"POST", sc + "/proxies/alice/a/fault", map[string]string{"op": "inject_close", "code": "goodbye"}, 400, "invalid"},
		{"POST", sc + "/proxies/bob/a/fault", map[string]string{"op": "reset"}, 404, "not_found"},
		{"GET", sc + "/closes?node=z", nil, 404, "not_found"},
		{"POST", sc + "/drain", map[string]any{"timeout_ms": -1}, 400, "invalid"},
		{"GET", "/elsewhere", nil, 404, "not_found"},
	} {
		var e struct{ Code, Message string }
		if got := a.call(tc.method, tc.path, tc.body, &e); got != tc.status || e.Code != tc.code || e.Message == "" {
			t.Errorf("%s %s %v: %d %+v, want %d with code %s and a message", tc.method, tc.path, tc.body, got, e, tc.status, tc.code)
		}
	}
}

func TestAScenarioStopsByItselfAfterItsLifetime(t *testing.T) {
	a := startHarness(t, harness.Config{Lifetime: time.Millisecond})
	s := a.start("exchange")
	addr := hostOf(t, s.Nodes["a"].URL)
	waitFor(t, "the scenario to be gone and its node stopped", func() bool {
		if a.call("GET", "/scenarios/"+s.ID+"/closes", nil, nil) != http.StatusNotFound {
			return false
		}
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
}

func TestOnlyMaxScenariosRunAtOnce(t *testing.T) {
	a := startHarness(t, harness.Config{MaxScenarios: 1})
	s := a.start("exchange")
	var e struct{ Code string }
	if got := a.call("POST", "/scenarios", map[string]string{"name": "exchange"}, &e); got != http.StatusTooManyRequests || e.Code != "rate_limited" {
		t.Errorf("a second scenario: %d %s, want 429 rate_limited", got, e.Code)
	}
	a.must(http.StatusNoContent, "DELETE", "/scenarios/"+s.ID, nil, nil)
	a.start("exchange") // stopped with the harness
}

func TestTheHarnessListensOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "192.0.2.1:0", "example.com:0", "nonsense"} {
		if ln, err := harness.ListenLoopback(addr); err == nil {
			ln.Close()
			t.Errorf("listened on %s", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := harness.ListenLoopback(addr)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// events is a client's event log.
type events struct {
	c    *client.Client
	done chan struct{}

	mu  sync.Mutex
	all []client.Event
}

func logEvents(t *testing.T, c *client.Client) *events {
	l := &events{c: c, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ev := range c.Events() {
			l.mu.Lock()
			l.all = append(l.all, ev)
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.close)
	return l
}

func (l *events) close() {
	_ = l.c.Close()
	<-l.done
}

func (l *events) waitFor(t *testing.T, what string, match func(client.Event) bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return slices.ContainsFunc(l.all, match)
	})
}

// waitFor polls cond until it holds, failing after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		<-tick.C
	}
}
