package harness

import (
	"strings"
	"sync"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/faultproxy"
	"github.com/tandemhq/tandem/protocol"
)

// Fault ops: the scenario steps that act on a client's proxies.
const (
	FaultReset    = "reset"
	FaultSilence  = "silence"
	FaultThrottle = "throttle"
	FaultHoldAway = "hold_away"
	FaultLetBack  = "let_back"
	// FaultInjectClose hands the client a WebSocket close frame with the
	// step's code, as if from the server, and ends the connection; the
	// server sees it end without a close (it holds the session). It proves
	// an SDK's reaction to close codes a well-behaved SDK cannot make the
	// server send (too_large, protocol_violation…). The connection must be
	// idle, between frames.
	FaultInjectClose = "inject_close"
)

// FaultOps are the scenario ops that are faults, applied to every proxy of
// the step's client.
var FaultOps = []string{FaultReset, FaultSilence, FaultThrottle, FaultHoldAway, FaultLetBack, FaultInjectClose}

// Fault is a fault step, as the scenario file gives it (README.md: reset,
// silence, throttle, hold_away, let_back).
type Fault struct {
	Op             string `json:"op"`
	Direction      string `json:"direction,omitempty"` // up, down or both; reset and throttle default to down
	AfterBytes     int64  `json:"after_bytes,omitempty"`
	BytesPerSecond int    `json:"bytes_per_second,omitempty"`
	Code           string `json:"code,omitempty"` // inject_close: a close code name (docs/protocol.md §12)
}

// Proxy is the fault proxy of one client in front of one node, with the
// faults the client's next connections through it start with.
type Proxy struct {
	*faultproxy.Proxy
	mu       sync.Mutex
	defaults faultproxy.Faults
}

// NewProxy starts a fault proxy on 127.0.0.1:0 in front of node.
func NewProxy(node *Node) (*Proxy, error) {
	px, err := faultproxy.New(faultproxy.Config{Target: node.Addr})
	if err != nil {
		return nil, err
	}
	return &Proxy{Proxy: px}, nil
}

// URL is the node's WebSocket URL with the proxy's address in place of
// the node's: what an SDK dials to reach the node through the proxy.
func (p *Proxy) URL() string { return "ws://" + p.Addr() + "/ws" }

// Open is how many of the proxy's connections are still open.
func (p *Proxy) Open() int { return len(p.Conns()) }

// Apply injects f into the proxy's open connections and, for throttle,
// hold_away and let_back, into the defaults of those it accepts later.
// A step acts on every proxy of its client, so a driver applies it to each.
func (p *Proxy) Apply(f Fault) error {
	dirs, err := directions(f.Direction)
	if err != nil {
		return err
	}
	switch f.Op {
	case FaultReset:
		for _, c := range p.Conns() {
			if f.AfterBytes <= 0 {
				c.Reset()
				continue
			}
			for _, d := range dirs {
				c.ResetAfter(d, f.AfterBytes)
			}
		}
	case FaultSilence:
		if f.Direction == "" {
			return tandem.Errorf(tandem.EInvalid, "silence: direction is required")
		}
		for _, c := range p.Conns() {
			for _, d := range dirs {
				c.Silence(d)
			}
		}
	case FaultThrottle:
		if f.BytesPerSecond < 0 {
			return tandem.Errorf(tandem.EInvalid, "throttle: bytes_per_second %d is negative", f.BytesPerSecond)
		}
		p.setDefaults(func(df *faultproxy.Faults) {
			for _, d := range dirs {
				if d == faultproxy.Upstream {
					df.Upstream.BytesPerSecond = f.BytesPerSecond
				} else {
					df.Downstream.BytesPerSecond = f.BytesPerSecond
				}
			}
		})
		for _, c := range p.Conns() {
			for _, d := range dirs {
				c.SetThrottle(d, f.BytesPerSecond)
			}
		}
	case FaultHoldAway:
		// Every connection the client opens from now on is reset by its
		// first byte, until let_back.
		p.setDefaults(func(df *faultproxy.Faults) { df.Upstream.ResetAfter = 1 })
		for _, c := range p.Conns() {
			c.Reset()
		}
	case FaultLetBack:
		p.setDefaults(func(df *faultproxy.Faults) { df.Upstream.ResetAfter = 0 })
	case FaultInjectClose:
		code, ok := protocol.CloseCodeNamed(f.Code)
		if !ok {
			return tandem.Errorf(tandem.EInvalid, "inject_close: code %q is not a close code name", f.Code)
		}
		frame := closeFrame(code)
		for _, c := range p.Conns() {
			c.EndWith(faultproxy.Downstream, frame)
		}
	default:
		return tandem.Errorf(tandem.EInvalid, "fault op %q: want one of %s", f.Op, strings.Join(FaultOps, ", "))
	}
	return nil
}

func (p *Proxy) setDefaults(change func(*faultproxy.Faults)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	change(&p.defaults)
	p.SetDefaults(p.defaults)
}

// closeFrame is a server's WebSocket close frame (unmasked, RFC 6455 §5.5.1)
// with code and its name as the reason.
func closeFrame(code protocol.CloseCode) []byte {
	reason := code.String()
	b := []byte{0x88, byte(2 + len(reason)), byte(code >> 8), byte(code)}
	return append(b, reason...)
}

// directions reads a step's direction; "" is down.
func directions(s string) ([]faultproxy.Direction, error) {
	switch s {
	case "", "down":
		return []faultproxy.Direction{faultproxy.Downstream}, nil
	case "up":
		return []faultproxy.Direction{faultproxy.Upstream}, nil
	case "both":
		return []faultproxy.Direction{faultproxy.Upstream, faultproxy.Downstream}, nil
	}
	return nil, tandem.Errorf(tandem.EInvalid, "direction %q: want up, down or both", s)
}
