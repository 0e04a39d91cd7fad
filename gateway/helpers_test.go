package gateway_test

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/faultproxy"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
	client "github.com/tandemhq/tandem/sdk/go"
)

// Helpers shared by the fault tests: a fault proxy in front of a node, SDK
// clients that dial through it, an event log per client, a recording room
// type and polling with a deadline.

// newProxy starts a fault proxy whose target is the node's listener.
func newProxy(t *testing.T, n *node) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(faultproxy.Config{Target: n.srv.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// withMetrics gives the node its own metrics, so a test can read them.
func withMetrics(m **observe.Realtime) func(*gateway.Config) {
	return func(c *gateway.Config) {
		*m = observe.NewRealtime(prometheus.NewRegistry())
		c.Metrics = *m
	}
}

// counter reads a counter's value.
func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// closesWith is how many connections the node closed with code.
func closesWith(m *observe.Realtime, code protocol.CloseCode) float64 {
	return counter(m.Closes.WithLabelValues(code.String()))
}

// sdkConfig is an SDK config for player that dials the node through the
// proxy, with fast reconnects. The token function may run on any goroutine.
func sdkConfig(n *node, p *faultproxy.Proxy, player string, codec protocol.CodecID) client.Config {
	addr := p.Addr()
	return client.Config{
		URL:   n.url,
		Codec: codec,
		Token: func(context.Context) (string, error) {
			return n.signer.Issue(tandem.Player{ID: player}, time.Now(), time.Minute)
		},
		NetDial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		MinBackoff:  time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
		AckInterval: 10 * time.Millisecond,
		// Generous, so that a loaded machine does not make the SDK give up
		// on a live connection; tests of silence set their own.
		HeartbeatTimeout: 5 * time.Second,
	}
}

// dialSDK connects an SDK client and closes it when the test ends.
func dialSDK(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// poll reports whether cond held within timeout.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// numbered returns "1", "2", … "n".
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i+1)
	}
	return out
}

// recorder is what a recording room saw, readable from the test.
type recorder struct {
	mu     sync.Mutex
	inputs map[string][]string // player → data of each message, in order
	leaves map[string][]protocol.LeaveReason
	stop   atomic.Bool // the broadcast stops (with an "end" message) once set
}

func newRecorder() *recorder {
	return &recorder{inputs: map[string][]string{}, leaves: map[string][]protocol.LeaveReason{}}
}

func (r *recorder) inputsOf(player string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.inputs[player]...)
}

func (r *recorder) leavesOf(player string) []protocol.LeaveReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]protocol.LeaveReason(nil), r.leaves[player]...)
}

// recOptions are a recording room's creation options.
type recOptions struct {
	Messages int `json:"messages"` // numbered broadcasts to send (0: until recorder.stop)
	PerTick  int `json:"per_tick"` // broadcasts per tick
	Size     int `json:"size"`     // pad each broadcast's data to this many bytes
	Members  int `json:"members"`  // members joined before the broadcast starts (default 1)
}

func (o recOptions) bytes() []byte {
	b, _ := json.Marshal(o)
	return b
}

// recordingType is a room type that records every input it receives, in
// order, and once Members (1) joined broadcasts numbered messages
// (topic "n", data "1", "2", … padded with spaces to Size) at PerTick per
// tick; an unbounded broadcast ends with topic "end", data the last number.
func recordingType(name string, rec *recorder, tickRate int) room.Type {
	return room.Type{
		Name:     name,
		TickRate: tickRate,
		New:      func() room.Handler { return &recordingRoom{rec: rec} },
	}
}

type recordingRoom struct {
	room.Base
	rec     *recorder
	opts    recOptions
	started bool
	joined  int
	sent    int
	ended   bool
}

func (h *recordingRoom) Init(_ *room.Room, options []byte) error {
	if len(options) > 0 {
		if err := json.Unmarshal(options, &h.opts); err != nil {
			return err
		}
	}
	h.opts.PerTick = max(h.opts.PerTick, 1)
	return nil
}

func (h *recordingRoom) Join(*room.Room, *tandem.Player) {
	h.joined++
	h.started = h.started || h.joined >= h.opts.Members
}

func (h *recordingRoom) Message(_ *room.Room, p *tandem.Player, m room.Message) {
	h.rec.mu.Lock()
	h.rec.inputs[p.ID] = append(h.rec.inputs[p.ID], string(m.Data))
	h.rec.mu.Unlock()
}

func (h *recordingRoom) Leave(_ *room.Room, p *tandem.Player, reason protocol.LeaveReason) {
	h.rec.mu.Lock()
	h.rec.leaves[p.ID] = append(h.rec.leaves[p.ID], reason)
	h.rec.mu.Unlock()
}

func (h *recordingRoom) Tick(r *room.Room) {
	if !h.started || h.ended {
		return
	}
	if h.opts.Messages == 0 && h.rec.stop.Load() {
		h.ended = true
		r.Broadcast("end", []byte(strconv.Itoa(h.sent)))
		return
	}
	for range h.opts.PerTick {
		if h.opts.Messages > 0 && h.sent >= h.opts.Messages {
			h.ended = true
			return
		}
		h.sent++
		data := strconv.AppendInt(make([]byte, 0, max(h.opts.Size, 8)), int64(h.sent), 10)
		for len(data) < h.opts.Size {
			data = append(data, ' ')
		}
		r.Broadcast("n", data)
	}
}
