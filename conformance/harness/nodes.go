// Package harness owns what runs a conformance scenario's server side: the
// realtime nodes a scenario starts (conformance.Node.Apply on each, one
// embedded NATS server when there are two or more), the realtime tokens its
// players connect with, the fault proxies its clients dial through and the
// faults the scenario steps inject. The Go SDK's driver uses these
// directly; Server gives the same to drivers in other languages (sdk/ts,
// sdk/csharp) over a small HTTP+JSON API on the loopback interface.
package harness

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/conformance"
	"github.com/tandemhq/tandem/gateway"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/room"
	"github.com/tandemhq/tandem/token"
)

// closesMetric is the counter await_close reads (observe.Realtime.Closes).
const closesMetric = "tandem_realtime_closes_total"

// Token kinds a scenario's connect step may ask for besides a valid one.
const (
	TokenForged  = "forged"  // signed by a key no node knows
	TokenExpired = "expired" // expired long ago
)

// Nodes are the running realtime nodes of one scenario.
type Nodes struct {
	signer *token.Signer
	ids    []string
	byID   map[string]*Node
	emb    *natsbus.Embedded
	buses  []*natsbus.Bus
}

// Node is one realtime node: its gateway serves /ws and its own metrics
// registry /metrics on 127.0.0.1.
type Node struct {
	ID         string
	Addr       string // host:port of the listener
	URL        string // ws://Addr/ws, also the node's advertised URL
	MetricsURL string // http://Addr/metrics
	Gateway    *gateway.Gateway
	Metrics    *observe.Realtime

	reg  *prometheus.Registry
	srv  *http.Server
	done chan struct{} // closed when srv.Serve has returned
}

// StartNodes starts the scenario's nodes on 127.0.0.1:0 with its node
// settings. dir holds the embedded NATS server's store of a scenario with
// two or more nodes; the caller removes it after Close. On error, whatever
// was started is stopped again.
func StartNodes(ctx context.Context, s *conformance.Scenario, dir string) (_ *Nodes, err error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	n := &Nodes{signer: token.NewSigner("test", priv), ids: s.NodeIDs(), byID: map[string]*Node{}}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = n.Close(cctx)
		}
	}()
	if len(n.ids) > 1 {
		if n.emb, err = natsbus.StartEmbedded(natsbus.EmbeddedConfig{Dir: dir}); err != nil {
			return nil, err
		}
	}
	for _, id := range n.ids {
		if err := n.start(ctx, id, s.Node); err != nil {
			return nil, fmt.Errorf("node %s: %w", id, err)
		}
	}
	return n, nil
}

// start starts node id and adds it to n.
func (n *Nodes) start(ctx context.Context, id string, settings conformance.Node) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	nd := &Node{ID: id, Addr: ln.Addr().String(), reg: prometheus.NewRegistry(), done: make(chan struct{})}
	nd.URL = "ws://" + nd.Addr + "/ws"
	nd.MetricsURL = "http://" + nd.Addr + "/metrics"
	nd.Metrics = observe.NewRealtime(nd.reg)
	cfg := gateway.Config{
		Node:      id,
		Verifier:  token.NewKeySet(map[string]ed25519.PublicKey{n.signer.KeyID(): n.signer.PublicKey()}),
		RoomTypes: room.BuiltinTypes(),
		Metrics:   nd.Metrics,
	}
	settings.Apply(&cfg)
	if n.emb != nil {
		bus, err := natsbus.Connect(ctx, natsbus.Config{Server: n.emb, Name: id, NodeTTL: 5 * time.Second})
		if err != nil {
			ln.Close()
			return err
		}
		n.buses = append(n.buses, bus)
		cfg.Cluster = bus
		cfg.AdvertiseURL = nd.URL
		// Frequent heartbeats so a node's registry entry and rooms are
		// seen soon after it starts.
		cfg.HeartbeatInterval = 100 * time.Millisecond
	}
	if nd.Gateway, err = gateway.New(cfg); err != nil {
		ln.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", nd.Gateway)
	mux.Handle("GET /metrics", promhttp.HandlerFor(nd.reg, promhttp.HandlerOpts{}))
	nd.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(nd.done)
		_ = nd.srv.Serve(ln)
	}()
	n.byID[id] = nd
	return nil
}

// IDs are the node ids, in the scenario's order.
func (n *Nodes) IDs() []string { return n.ids }

// Node returns the node with this id ("": the first), or nil.
func (n *Nodes) Node(id string) *Node {
	if id == "" {
		id = n.ids[0]
	}
	return n.byID[id]
}

// Token issues a realtime token for player, valid for a minute, as a
// scenario's connect step uses: kind "" a fresh valid one, TokenForged one
// signed by a key no node knows, TokenExpired one that expired an hour ago.
func (n *Nodes) Token(player, kind string) (string, error) {
	signer, issuedAt := n.signer, time.Now()
	switch kind {
	case "":
	case TokenForged:
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			return "", err
		}
		signer = token.NewSigner(n.signer.KeyID(), priv)
	case TokenExpired:
		issuedAt = issuedAt.Add(-time.Hour)
	default:
		return "", tandem.Errorf(tandem.EInvalid, "token kind %q: want %s or %s", kind, TokenForged, TokenExpired)
	}
	return signer.Issue(tandem.Player{ID: player, Name: player}, issuedAt, time.Minute)
}

// Close stops every node (its sessions close with node_draining), then the
// bus connections and the NATS server. It waits for all of them, or for
// ctx, and returns the nodes' errors.
func (n *Nodes) Close(ctx context.Context) error {
	var errs []error
	for i := len(n.ids) - 1; i >= 0; i-- {
		nd := n.byID[n.ids[i]]
		if nd == nil {
			continue
		}
		if nd.Gateway != nil {
			if err := nd.Gateway.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("close node %s: %w", nd.ID, err))
			}
		}
		if nd.srv != nil {
			_ = nd.srv.Close()
			<-nd.done
		}
	}
	for _, b := range n.buses {
		_ = b.Close()
	}
	n.buses = nil
	if n.emb != nil {
		n.emb.Shutdown()
	}
	return errors.Join(errs...)
}

// Closes is how many connections the node has closed with this close code
// name (such as "node_draining").
func (nd *Node) Closes(code string) float64 {
	var m dto.Metric
	if err := nd.Metrics.Closes.WithLabelValues(code).Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// CloseCounts are the node's closes by close code name, as its /metrics
// reports them; codes it never closed with are absent.
func (nd *Node) CloseCounts() (map[string]float64, error) {
	families, err := nd.reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != closesMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out, nil
}

// Drain is the scenario's drain step on this node: it lets the node's
// rooms run for at most timeout (at least a millisecond), then closes its
// remaining sessions with node_draining.
func (nd *Node) Drain(ctx context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, time.Millisecond))
	defer cancel()
	nd.Gateway.Drain(ctx)
}
