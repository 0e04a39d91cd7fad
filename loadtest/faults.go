package loadtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/faultproxy"
)

// Faults are the network faults a run puts between its bots and the node:
// with any of them (or Proxy), the run starts a faultproxy on 127.0.0.1:0
// in front of the target and every bot connects through it.
type Faults struct {
	// Proxy runs the proxy even without a fault: the reconnect scenario
	// then cuts its clients by resetting their proxied connections, as a
	// lost network does, instead of closing its own sockets (--faults).
	Proxy bool
	// Latency delays each direction of every connection by this long.
	Latency time.Duration
	// Jitter varies the latency: each direction of each connection gets a
	// latency drawn uniformly from Latency ± Jitter (never below 0), drawn
	// again every jitterEvery.
	Jitter time.Duration
	// Bandwidth limits each direction of every connection to this many
	// bytes per second (0: unlimited).
	Bandwidth int
	// ResetEvery resets one live connection, picked at random, this often
	// (0: never). The bots do not resume it (but in the reconnect
	// scenario): it counts as a connection lost.
	ResetEvery time.Duration
}

// Bounds of the faults.
const (
	MaxLatency    = 10 * time.Second
	MinBandwidth  = 1024
	MinResetEvery = 10 * time.Millisecond
	// jitterEvery is how often a jittered latency is drawn again.
	jitterEvery = 100 * time.Millisecond
)

func (f Faults) on() bool {
	return f.Proxy || f.Latency > 0 || f.Jitter > 0 || f.Bandwidth > 0 || f.ResetEvery > 0
}

func (f Faults) check() error {
	switch {
	case f.Latency < 0 || f.Latency > MaxLatency:
		return fmt.Errorf("--latency %s is out of range [0, %s]", f.Latency, MaxLatency)
	case f.Jitter < 0 || f.Jitter > MaxLatency:
		return fmt.Errorf("--jitter %s is out of range [0, %s]", f.Jitter, MaxLatency)
	case f.Bandwidth < 0 || f.Bandwidth > 0 && f.Bandwidth < MinBandwidth:
		return fmt.Errorf("--bandwidth %d: give 0 (unlimited) or at least %d bytes per second", f.Bandwidth, MinBandwidth)
	case f.ResetEvery < 0 || f.ResetEvery > 0 && f.ResetEvery < MinResetEvery:
		return fmt.Errorf("--reset-every %s: give 0 (never) or at least %s", f.ResetEvery, MinResetEvery)
	}
	return nil
}

// String describes the faults for a report's setup.
func (f Faults) String() string {
	var parts []string
	if f.Latency > 0 || f.Jitter > 0 {
		l := "latency " + f.Latency.String()
		if f.Jitter > 0 {
			l += " ± " + f.Jitter.String()
		}
		parts = append(parts, l+" each way")
	}
	if f.Bandwidth > 0 {
		parts = append(parts, fmt.Sprintf("%s bytes/s each way", groupThousands(int64(f.Bandwidth))))
	}
	if f.ResetEvery > 0 {
		parts = append(parts, "a connection reset every "+f.ResetEvery.String())
	}
	if len(parts) == 0 {
		return "through a fault proxy, no fault"
	}
	return "through a fault proxy: " + strings.Join(parts, ", ")
}

// faultRun is the proxy of a run and the goroutine that redraws jitter
// and resets connections.
type faultRun struct {
	f      Faults
	proxy  *faultproxy.Proxy
	stop   chan struct{}
	wg     sync.WaitGroup
	resets atomic.Int64 // connections reset by ResetEvery
}

// startFaults starts the proxy in front of the node of target (a ws://
// URL) and returns the URL the bots dial instead.
func startFaults(target string, f Faults) (*faultRun, string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", err
	}
	if u.Scheme != "ws" {
		return nil, "", errors.New("the fault proxy forwards plain WebSocket: give a ws:// URL with --latency, --jitter, --bandwidth, --reset-every or --faults")
	}
	host := u.Host
	if u.Port() == "" {
		host += ":80"
	}
	dir := faultproxy.DirectionFaults{Latency: f.Latency, BytesPerSecond: f.Bandwidth}
	p, err := faultproxy.New(faultproxy.Config{Target: host, Defaults: faultproxy.Faults{Upstream: dir, Downstream: dir}})
	if err != nil {
		return nil, "", fmt.Errorf("fault proxy: %w", err)
	}
	fr := &faultRun{f: f, proxy: p, stop: make(chan struct{})}
	if f.Jitter > 0 {
		fr.wg.Go(fr.jitter)
	}
	if f.ResetEvery > 0 {
		fr.wg.Go(fr.reset)
	}
	u.Host = p.Addr()
	return fr, u.String(), nil
}

// close stops the goroutines and the proxy, which closes every connection
// it still forwards: call it once the bots are done.
func (fr *faultRun) close() {
	close(fr.stop)
	fr.wg.Wait()
	_ = fr.proxy.Close()
}

// jitter draws every live connection's latencies again every jitterEvery.
func (fr *faultRun) jitter() {
	t := time.NewTicker(jitterEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-fr.stop:
			return
		}
		for _, c := range fr.proxy.Conns() {
			for _, d := range []faultproxy.Direction{faultproxy.Upstream, faultproxy.Downstream} {
				c.SetLatency(d, fr.drawLatency())
			}
		}
	}
}

func (fr *faultRun) drawLatency() time.Duration {
	j := int64(fr.f.Jitter)
	return max(fr.f.Latency+time.Duration(rand.Int64N(2*j+1)-j), 0)
}

// reset resets a random live connection every ResetEvery.
func (fr *faultRun) reset() {
	t := time.NewTicker(fr.f.ResetEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-fr.stop:
			return
		}
		if conns := fr.proxy.Conns(); len(conns) > 0 {
			conns[rand.IntN(len(conns))].Reset()
			fr.resets.Add(1)
		}
	}
}

// conns returns the proxied connections still open by the address of
// their client end, which is a bot's local address.
func (fr *faultRun) conns() map[string]*faultproxy.Conn {
	m := make(map[string]*faultproxy.Conn)
	for _, c := range fr.proxy.Conns() {
		m[c.ClientAddr().String()] = c
	}
	return m
}
