package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/conformance"
	"github.com/tandemhq/tandem/conformance/harness"
	"github.com/tandemhq/tandem/internal/sdktest"
	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
)

// The Go SDK's conformance driver: it runs every scenario of scenarios/
// with sdk/go against real in-process nodes, each client behind a fault
// proxy of its own per node.

const (
	scenarioDir = "scenarios"
	// waitLimit bounds every wait of a step: generous, because a loaded
	// machine is slow, and the scenarios make no timing claims.
	waitLimit = 30 * time.Second
)

// TestScenarios runs every scenario file, and fails when one was not run
// to the end (a skipped or unrunnable scenario is a failure, as it must be
// for every SDK's driver).
func TestScenarios(t *testing.T) {
	files, err := conformance.Files(scenarioDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in " + scenarioDir)
	}
	var mu sync.Mutex
	ran := map[string]bool{}
	t.Cleanup(func() {
		if f := flag.Lookup("test.run"); f != nil && strings.Contains(f.Value.String(), "/") {
			return // a subset was asked for
		}
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			if !ran[name] {
				t.Errorf("scenario %s was not run", name)
			}
		}
	})
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				mu.Lock()
				ran[name] = !t.Skipped()
				mu.Unlock()
			}()
			s, err := conformance.LoadFile(f)
			if err != nil {
				t.Fatalf("cannot run: %v", err)
			}
			newDriver(t, s).run()
		})
	}
}

// driver runs one scenario.
type driver struct {
	t       *testing.T
	s       *conformance.Scenario
	nodes   *harness.Nodes
	clients map[string]*player

	mu      sync.Mutex
	aliases map[string]string // room alias → room id
	names   map[string]string // room id → alias
}

// player is a scenario client: an SDK client, its event log, the fault
// proxies it dials through (one per node) and a tap on the frames it reads.
type player struct {
	name    string
	c       *client.Client
	log     *sdktest.EventLog
	cursor  int                       // events before it have been checked by an expect step
	proxies map[string]*harness.Proxy // by node address
	byNode  map[string]*harness.Proxy // by node id
	rooms   map[string]*client.Room   // by alias
	tap     *tap
}

func newDriver(t *testing.T, s *conformance.Scenario) *driver {
	nodes, err := harness.StartNodes(context.Background(), s, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := nodes.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return &driver{
		t: t, s: s, nodes: nodes, clients: map[string]*player{},
		aliases: map[string]string{}, names: map[string]string{},
	}
}

func (d *driver) run() {
	for i, st := range d.s.Steps {
		d.step(i+1, st)
	}
}

// step performs one step; a failure names the step.
func (d *driver) step(i int, st conformance.Step) {
	t := d.t
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d (%s %s): %s", i, st.Op, st.Client, fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	p := d.clients[st.Client]
	switch st.Op {
	case "connect":
		d.connect(ctx, st, fail)
	case "join":
		d.join(ctx, p, st, fail)
	case "leave":
		if err := d.room(p, st.Room, fail).Leave(ctx); err != nil {
			fail("leave: %v", err)
		}
	case "send":
		d.send(ctx, p, st, fail)
	case "rpc":
		reply, err := p.c.RPC(ctx, st.Method, []byte(st.Data))
		switch {
		case st.Error != nil:
			checkServerError(err, st.Error.Code, fail)
		case err != nil:
			fail("rpc: %v", err)
		case st.Reply != nil && string(reply) != *st.Reply:
			fail("reply %q, want %q", reply, *st.Reply)
		}
	case "expect":
		d.expect(p, st, fail)
	case "expect_messages":
		d.expectMessages(p, st, fail)
	case "expect_none":
		for _, ev := range p.log.All() {
			if e := d.normalize(ev); slices.Contains(st.Kinds, e.Kind()) {
				fail("got %v", e)
			}
		}
	case "expect_frames":
		waitFor(fail, fmt.Sprintf("%d %s frames", st.Count, st.Body), func() bool { return p.tap.count(st.Body) >= st.Count })
	case harness.FaultReset, harness.FaultSilence, harness.FaultThrottle, harness.FaultHoldAway, harness.FaultLetBack, harness.FaultInjectClose:
		// A fault acts on every connection of the client, to any node.
		f := harness.Fault{Op: st.Op, Direction: st.Direction, AfterBytes: st.AfterBytes, BytesPerSecond: st.BytesPerSecond, Code: st.Code}
		for _, px := range p.byNode {
			if err := px.Apply(f); err != nil {
				fail("%v", err)
			}
		}
	case "await_close":
		n := d.nodes.Node(st.Node)
		want := float64(max(st.Count, 1))
		waitFor(fail, fmt.Sprintf("node %s to close %v connections with %s", n.ID, want, st.Code), func() bool {
			return n.Closes(st.Code) >= want
		})
	case "connections":
		px := p.byNode[d.nodes.Node(st.Node).ID]
		what := fmt.Sprintf("%d connections accepted", st.Accepted)
		if st.Open != nil {
			what += fmt.Sprintf(", %d open", *st.Open)
		}
		waitFor(fail, what, func() bool {
			if got := px.Accepted(); got > st.Accepted {
				fail("the client opened %d connections, want %d", got, st.Accepted)
			}
			return px.Accepted() == st.Accepted && (st.Open == nil || px.Open() == *st.Open)
		})
	case "close":
		_ = p.c.Close()
	case "drain":
		d.nodes.Node(st.Node).Drain(ctx, time.Duration(st.TimeoutMS)*time.Millisecond)
	default:
		fail("unknown op") // Validate refuses it first
	}
}

func (d *driver) connect(ctx context.Context, st conformance.Step, fail func(string, ...any)) {
	t := d.t
	name := st.Client
	id := cmpOr(st.Player, name)
	codec := protocol.CodecJSON
	if st.Codec == "proto" {
		codec = protocol.CodecBinary
	}
	p := &player{name: name, proxies: map[string]*harness.Proxy{}, byNode: map[string]*harness.Proxy{},
		rooms: map[string]*client.Room{}, tap: newTap(codec.Codec())}
	for _, nid := range d.nodes.IDs() {
		n := d.nodes.Node(nid)
		px, err := harness.NewProxy(n)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = px.Close() })
		p.proxies[n.Addr], p.byNode[n.ID] = px, px
	}
	cfg := client.Config{
		URL:   d.nodes.Node(st.Node).URL,
		Codec: codec,
		Token: func(context.Context) (string, error) {
			return d.nodes.Token(id, st.Token)
		},
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			px := p.proxies[addr]
			if px == nil {
				return nil, fmt.Errorf("no proxy for %s", addr)
			}
			var nd net.Dialer
			nc, err := nd.DialContext(ctx, network, px.Addr())
			if err != nil {
				return nil, err
			}
			return p.tap.wrap(nc), nil
		},
		MinBackoff:  time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
		AckInterval: 10 * time.Millisecond,
		// HeartbeatTimeout: the SDK's default (2.5 × the node's heartbeat)
		// unless the step sets one.
	}
	if st.HeartbeatTimeoutMS > 0 {
		cfg.HeartbeatTimeout = time.Duration(st.HeartbeatTimeoutMS) * time.Millisecond
	}
	t.Cleanup(p.tap.wait) // after the client's cleanup below: its connections are closed
	c, err := client.Dial(ctx, cfg)
	if st.Error != nil {
		if err == nil {
			_ = c.Close()
			fail("connected; want the connect refused")
		}
		var ce *client.CloseError
		if !errors.As(err, &ce) {
			fail("connect failed with %v, want a close", err)
		}
		if st.Error.Close != "" && ce.Code.String() != st.Error.Close {
			fail("connect closed with %s, want %s", ce.Code, st.Error.Close)
		}
		checkServerError(err, st.Error.Code, fail)
		return
	}
	if err != nil {
		fail("dial: %v", err)
	}
	p.c = c
	p.log = sdktest.LogEvents(t, c)
	d.clients[name] = p
}

func (d *driver) join(ctx context.Context, p *player, st conformance.Step, fail func(string, ...any)) {
	o := client.JoinOptions{RoomType: st.RoomType}
	if st.Room != "" {
		o.RoomID = d.roomID(st.Room)
	}
	switch st.Mode {
	case "join":
		o.Mode = protocol.JoinMode_JOIN_MODE_JOIN
	case "create":
		o.Mode = protocol.JoinMode_JOIN_MODE_CREATE
	case "join_or_create":
		o.Mode = protocol.JoinMode_JOIN_MODE_JOIN_OR_CREATE
	}
	var (
		r   *client.Room
		err error
	)
	if st.AwaitDirectory {
		// The directory learns of a room on another node a moment after the
		// room starts: until then the join is not_found.
		waitFor(fail, "the room directory to know "+st.Room, func() bool {
			r, err = p.c.Join(ctx, o)
			var se *client.ServerError
			return !errors.As(err, &se) || (se.Code != client.CodeNotFound && se.Code != client.CodeUnavailable)
		})
	} else {
		r, err = p.c.Join(ctx, o)
	}
	if st.Error != nil {
		checkServerError(err, st.Error.Code, fail)
		return
	}
	if err != nil {
		fail("join: %v", err)
	}
	alias := cmpOr(st.As, st.Room)
	if alias != "" {
		d.mu.Lock()
		d.aliases[alias], d.names[r.ID()] = r.ID(), alias
		d.mu.Unlock()
		p.rooms[alias] = r
	}
}

func (d *driver) send(ctx context.Context, p *player, st conformance.Step, fail func(string, ...any)) {
	r := d.room(p, st.Room, fail)
	var opts []client.SendOption
	switch st.Delivery {
	case "others":
		opts = append(opts, client.Others())
	case "list":
		opts = append(opts, client.To(st.To...))
	case "room":
		opts = append(opts, client.HandlerOnly())
	}
	if st.Count == 0 {
		if err := r.Send(ctx, st.Topic, []byte(conformance.Expand(st.Data, 0, st.Size)), opts...); err != nil {
			fail("send: %v", err)
		}
		return
	}
	first := max(st.First, 1)
	for i := first; i < first+st.Count; i++ {
		if err := r.Send(ctx, st.Topic, []byte(conformance.Expand(st.Data, i, st.Size)), opts...); err != nil {
			if slices.ContainsFunc(p.log.All(), func(ev client.Event) bool { _, ok := ev.(*client.Closed); return ok }) {
				return // the server closed the client mid-series: the next steps check how
			}
			fail("send %d: %v", i, err)
		}
	}
}

func (d *driver) room(p *player, alias string, fail func(string, ...any)) *client.Room {
	r := p.rooms[alias]
	if r == nil {
		fail("%s has not joined room %q", p.name, alias)
	}
	return r
}

func (d *driver) roomID(alias string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.aliases[alias]; ok {
		return id
	}
	return alias // a room id of no room: the scenario expects not_found
}

func (d *driver) roomAlias(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := d.names[id]; ok {
		return a
	}
	return id
}

// expect checks that the client's next events, those of the kinds in
// st.Skip passed over, are exactly st.Events, in order.
func (d *driver) expect(p *player, st conformance.Step, fail func(string, ...any)) {
	var pos int
	what := lazy(func() any {
		return fmt.Sprintf("%v; the events since the last expect: %v", st.Events, d.normalizeAll(p.log.All()[p.cursor:]))
	})
	waitFor(fail, what, func() bool {
		evs := p.log.All()
		k := 0
		for pos = p.cursor; pos < len(evs) && k < len(st.Events); pos++ {
			got := d.normalize(evs[pos])
			if slices.Contains(st.Skip, got.Kind()) {
				continue
			}
			if !matches(st.Events[k], got) {
				fail("event %d: got %v, want %v (events since the last expect: %v)", k+1, got, st.Events[k], d.normalizeAll(evs[p.cursor:pos+1]))
			}
			k++
		}
		return k == len(st.Events)
	})
	p.cursor = pos
}

// expectMessages checks the client's room messages of a room and topic:
// exactly the numbered series, in order, each once.
func (d *driver) expectMessages(p *player, st conformance.Step, fail func(string, ...any)) {
	want := make([]string, st.Count)
	for i := range want {
		want[i] = conformance.Expand(st.Data, i+1, st.Size)
	}
	var got []string
	what := lazy(func() any {
		return fmt.Sprintf("%d messages %q in %s (%d so far; the last events: %v)", st.Count, st.Topic, st.Room, len(got), d.normalizeAll(lastNonMessages(p.log.All(), 8)))
	})
	waitFor(fail, what, func() bool {
		got = got[:0]
		for _, ev := range p.log.All() {
			if m, ok := ev.(*client.RoomMessage); ok && m.Topic == st.Topic && d.roomAlias(m.Room.ID()) == st.Room {
				got = append(got, string(m.Data))
			}
		}
		return len(got) >= st.Count
	})
	if !slices.Equal(got, want) {
		fail("got %d messages, not the %d of the series exactly once in order: %q", len(got), st.Count, short(got))
	}
}

// normalize turns an SDK event into the scenario's event form.
func (d *driver) normalize(ev client.Event) conformance.Event {
	var e map[string]any
	switch v := ev.(type) {
	case *client.Joined:
		e = map[string]any{"kind": "joined", "room": d.roomAlias(v.Room.ID()), "room_type": v.Room.Type(), "players": v.Players}
	case *client.RoomMessage:
		e = map[string]any{"kind": "message", "room": d.roomAlias(v.Room.ID()), "from": v.From, "topic": v.Topic, "data": string(v.Data)}
	case *client.RoomEvent:
		e = map[string]any{"kind": "room_event", "room": d.roomAlias(v.Room.ID()), "player": v.PlayerID,
			"event": enumName(v.Kind.String(), "ROOM_EVENT_")}
		if v.Reason != protocol.LeaveReason_LEAVE_REASON_UNSPECIFIED {
			e["reason"] = enumName(v.Reason.String(), "LEAVE_REASON_")
		}
	case *client.Left:
		e = map[string]any{"kind": "left", "room": d.roomAlias(v.Room.ID()), "reason": enumName(v.Reason.String(), "LEAVE_REASON_"), "missed": v.Missed}
	case *client.Gap:
		e = map[string]any{"kind": "gap", "room": d.roomAlias(v.Room.ID()), "epoch": v.Epoch, "state": string(v.State)}
	case *client.Snapshot:
		e = map[string]any{"kind": "snapshot", "room": d.roomAlias(v.Room.ID())}
	case *client.Delta:
		e = map[string]any{"kind": "delta", "room": d.roomAlias(v.Room.ID())}
	case *client.ErrorEvent:
		e = map[string]any{"kind": "error", "code": v.Err.Name, "room": d.roomAlias(v.Room), "topic": v.Topic}
	case *client.Notice:
		e = map[string]any{"kind": "notice", "notice_kind": v.Kind, "text": v.Text}
	case *client.Disconnected:
		e = map[string]any{"kind": "disconnected"}
		closeFields(e, v.Err)
	case *client.Resumed:
		e = map[string]any{"kind": "resumed"}
	case *client.SessionLost:
		rooms := make([]string, len(v.Rooms))
		for i, id := range v.Rooms {
			rooms[i] = d.roomAlias(id)
		}
		slices.Sort(rooms)
		e = map[string]any{"kind": "session_lost", "rooms": rooms}
		closeFields(e, v.Err)
		delete(e, "class")
	case *client.Closed:
		e = map[string]any{"kind": "closed"}
		closeFields(e, v.Err)
		var se *client.ServerError
		if errors.As(v.Err, &se) {
			e["error"] = se.Name
		}
	default:
		e = map[string]any{"kind": fmt.Sprintf("%T", ev)}
	}
	// The JSON form, so that numbers and lists compare like the
	// scenario's decoded values.
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	var out conformance.Event
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func (d *driver) normalizeAll(evs []client.Event) []conformance.Event {
	out := make([]conformance.Event, len(evs))
	for i, ev := range evs {
		out[i] = d.normalize(ev)
	}
	return out
}

// closeFields sets class and, for a close from the server, code.
func closeFields(e map[string]any, err error) {
	var ce *client.CloseError
	if errors.As(err, &ce) {
		e["class"], e["code"] = ce.Class().String(), ce.Code.String()
		return
	}
	e["class"] = protocol.ClassResume.String() // a reset, EOF, a silent connection
}

// matches reports whether got has every field of want.
func matches(want, got conformance.Event) bool {
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			return false
		}
		if !reflect.DeepEqual(normalizeJSON(v), g) {
			return false
		}
	}
	return true
}

func normalizeJSON(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func enumName(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

func checkServerError(err error, code string, fail func(string, ...any)) {
	var se *client.ServerError
	if !errors.As(err, &se) {
		fail("got %v, want a server error %s", err, code)
	}
	if code != "" && se.Name != code {
		fail("got error %s (%d), want %s", se.Name, se.Code, code)
	}
}

// waitFor polls cond until it holds, failing after waitLimit.
// what is formatted only on failure (a lazy shows the state then).
func waitFor(fail func(string, ...any), what any, cond func() bool) {
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			fail("timed out after %v waiting for %s", waitLimit, what)
		}
		<-tick.C
	}
}

// lazy formats f's value only when printed.
type lazy func() any

func (l lazy) String() string { return fmt.Sprint(l()) }

// lastNonMessages returns the last n events that are not room messages.
func lastNonMessages(evs []client.Event, n int) []client.Event {
	var out []client.Event
	for i := len(evs) - 1; i >= 0 && len(out) < n; i-- {
		if _, ok := evs[i].(*client.RoomMessage); !ok {
			out = append(out, evs[i])
		}
	}
	slices.Reverse(out)
	return out
}

func short(s []string) []string {
	if len(s) <= 20 {
		return s
	}
	return append(append(slices.Clone(s[:10]), "…"), s[len(s)-10:]...)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
