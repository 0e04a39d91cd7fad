package loadtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// tally counts events by name. It is safe for concurrent use; the events
// it counts (errors, closes, resumes) are rare next to frames.
type tally struct {
	mu sync.Mutex
	m  map[string]int
}

func (t *tally) add(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]int)
	}
	t.m[name]++
}

// counts returns a copy of the counts, nil when there is none.
func (t *tally) counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) == 0 {
		return nil
	}
	return maps.Clone(t.m)
}

func (t *tally) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, v := range t.m {
		n += v
	}
	return n
}

// countError counts an error frame by its code's name.
func (r *runner) countError(v *view) {
	r.errors.add(v.errorCode().String())
}

// countClose counts a close frame by its code's name, but the normal
// closure every run ends with.
func (r *runner) countClose(ce closedError) {
	if ce.code != protocol.CloseCode(ws.StatusNormalClosure) {
		r.closes.add(ce.code.String())
	}
}

// countLost counts a connection that ended with err while the run needed
// it: as abnormal, the protocol's name for an end without a close frame,
// unless a close frame or an error frame (counted as they came) ended it,
// or the run closed the socket itself.
func (r *runner) countLost(err error) {
	var ce closedError
	var se *serverError
	if errors.As(err, &ce) || errors.As(err, &se) || errors.Is(err, net.ErrClosed) {
		return
	}
	r.closes.add(protocol.CloseAbnormal.String())
}

// errorCode returns the code of an error frame without decoding the
// envelope.
func (v *view) errorCode() tandem.ErrorCode {
	if v.env != nil {
		return tandem.ErrorCode(v.env.GetError().GetCode())
	}
	return tandem.ErrorCode(field1Varint(v.body))
}

// addCounts puts the run's tallies into its report.
func (r *runner) addCounts(rep *Report) {
	rep.Errors, rep.Closes = r.errors.counts(), r.closes.counts()
	if rep.Resumes == nil && r.cfg.Scenario != "reconnect" { // reconnect counts its own, per victim
		rep.Resumes = r.resumes.counts()
	}
	if r.faults != nil {
		if n := r.faults.resets.Load(); n > 0 {
			rep.info("connections reset by --reset-every", float64(n), UnitCount)
		}
	}
}

// setStatus sets what the progress line says about the scenario's own
// progress (matches, resumes…) after the frame counts.
func (r *runner) setStatus(f func() string) { r.status.Store(&f) }

// progress writes a line to the log every second until ctx ends: elapsed
// time, bots, frames in and out per second over the last second, errors,
// closes, and the scenario's own status.
func (r *runner) progress(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	var lastIn, lastOut uint64
	last := start
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		r.botsMu.Lock()
		bots := r.bots
		r.botsMu.Unlock()
		var in, out uint64
		for _, c := range bots {
			in += c.in.Load()
			out += c.out.Load()
		}
		now := time.Now()
		secs := now.Sub(last).Seconds()
		line := fmt.Sprintf("%s: %d bots, frames in %s/s, out %s/s, %d errors, %d closes",
			now.Sub(start).Round(time.Second), len(bots),
			groupThousands(int64(float64(in-lastIn)/secs)), groupThousands(int64(float64(out-lastOut)/secs)),
			r.errors.total(), r.closes.total())
		if f := r.status.Load(); f != nil {
			if s := (*f)(); s != "" {
				line += ", " + s
			}
		}
		r.logf("%s", line)
		lastIn, lastOut, last = in, out, now
	}
}

// startProgress runs progress until the returned stop is called.
func (r *runner) startProgress(ctx context.Context) (stop func()) {
	if r.cfg.Log == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.progress(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}
