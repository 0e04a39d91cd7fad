package loadtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	gosdk "github.com/tandemhq/tandem/sdk/go"
)

// stormWait is what an SDK bot waits for in storm it: a victim, the last
// of the messages it missed (or a gap, or its session lost and the room
// joined again); a sender, its own copy of the last message it sent.
type stormWait struct {
	it     uint32
	sender bool
	cutAt  time.Time
	done   chan struct{} // closed once it came
	once   sync.Once
	lost   bool // a victim's session was lost: it must join its room again
}

func (w *stormWait) finish() { w.once.Do(func() { close(w.done) }) }

// sdkEvent is the handler of a reconnect run's SDK bots: it follows a
// storm's messages and the victims' resumes. The SDK resumes by itself;
// this only watches it deliver.
func (st *stormRun) sdkEvent(b *sdkBot, ev gosdk.Event) {
	w := b.wait.Load()
	if w == nil {
		return
	}
	last := uint32(st.r.cfg.Missed - 1)
	switch e := ev.(type) {
	case *gosdk.RoomMessage:
		if len(e.Data) < 8 || binary.BigEndian.Uint32(e.Data) != w.it {
			return
		}
		k := binary.BigEndian.Uint32(e.Data[4:])
		switch {
		case w.sender:
			if e.From == b.player && k == last {
				w.finish()
			}
		default:
			st.replayed.Add(1)
			if k == last {
				st.resumedBy(w, outcomeReplayed)
			}
		}
	case *gosdk.Resumed:
		if !w.sender && st.r.cfg.Missed == 0 {
			st.resumedBy(w, outcomeReplayed)
		}
	case *gosdk.Gap:
		if !w.sender {
			st.resumedBy(w, outcomeSnapshot)
		}
	case *gosdk.SessionLost:
		if !w.sender { // the storm joins the room again in the new session
			w.once.Do(func() {
				w.lost = true
				st.outcomes.add(outcomeExpired)
				close(w.done)
			})
		}
	}
}

// resumedBy counts a victim's resume done, once.
func (st *stormRun) resumedBy(w *stormWait, outcome string) {
	w.once.Do(func() {
		st.latency.Record(time.Since(w.cutAt))
		st.resumed.Add(1)
		st.outcomes.add(outcome)
		close(w.done)
	})
}

// sdkStorm is storm with SDK bots: with the network held down for the SDK
// bots' dials, every victim's proxied connection is reset and the senders
// send; then the network comes back, the SDKs resume by themselves, and
// the storm waits until every victim has its missed messages. It returns
// the victims still usable.
func (st *stormRun) sdkStorm(ctx context.Context, it uint32, senders, victims []*sdkBot) ([]*sdkBot, error) {
	r := st.r
	down := make(chan struct{})
	r.netDown.Store(&down)
	up := func() {
		if r.netDown.CompareAndSwap(&down, nil) {
			close(down)
		}
	}
	defer up()
	conns := r.faults.conns()
	waits := make([]*stormWait, len(victims))
	cut := make([]bool, len(victims))
	for i, v := range victims {
		w := &stormWait{it: it, cutAt: time.Now(), done: make(chan struct{})}
		waits[i] = w
		addr, _ := v.addr.Load().(string)
		pc := conns[addr]
		if pc == nil {
			// Not cut, it would get the messages live and count as a
			// resume: it is left out of this and later storms.
			st.fail(fmt.Errorf("%s: no proxied connection to cut", v.player))
			continue
		}
		v.wait.Store(w)
		cut[i] = true
		v.cut.Store(true)
		pc.Reset()
	}
	defer func() {
		for _, v := range victims {
			v.wait.Store(nil)
		}
	}()
	if r.cfg.Missed > 0 {
		var wg sync.WaitGroup
		errs := make([]error, len(senders))
		for i, s := range senders {
			wg.Go(func() { errs[i] = st.sdkSendMissed(ctx, s, it) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}

	start := time.Now()
	up()
	deadline := time.NewTimer(ioTimeout)
	defer deadline.Stop()
	ok := make([]bool, len(victims))
	for i, w := range waits {
		if !cut[i] {
			continue
		}
		select {
		case <-w.done:
			ok[i] = true
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		break // the deadline is shared: no more waiting
	}
	var wg sync.WaitGroup
	var left []*sdkBot
	for i, v := range victims {
		if !cut[i] {
			continue
		}
		if !ok[i] {
			select {
			case <-waits[i].done: // it came as the wait ended
				ok[i] = true
			default:
				st.fail(fmt.Errorf("%s: its missed messages did not come within %s", v.player, ioTimeout))
				continue
			}
		}
		if waits[i].lost {
			wg.Go(func() {
				// A new session: join the room again, so that the victim
				// takes part in the next storm.
				jctx, cancel := context.WithTimeout(ctx, ioTimeout)
				defer cancel()
				if _, err := v.join(jctx, v.room.Load().ID()); err != nil {
					ok[i] = false
					st.fail(fmt.Errorf("a new session after the old expired: %w", err))
				}
			})
		}
	}
	wg.Wait()
	for i, v := range victims {
		if ok[i] {
			left = append(left, v)
		}
	}
	st.phase += time.Since(start)
	return left, ctx.Err()
}

// sdkSendMissed sends Missed messages to the sender's room and waits for
// its own copy of the last: then the room has them all in its stream.
func (st *stormRun) sdkSendMissed(ctx context.Context, s *sdkBot, it uint32) error {
	w := &stormWait{it: it, sender: true, done: make(chan struct{})}
	s.wait.Store(w)
	defer s.wait.Store(nil)
	room := s.room.Load()
	data := make([]byte, st.r.cfg.Payload)
	binary.BigEndian.PutUint32(data, it)
	for k := range st.r.cfg.Missed {
		binary.BigEndian.PutUint32(data[4:], uint32(k))
		s.out.Add(1)
		if err := room.Send(ctx, "r", data); err != nil { // the SDK encodes data at once
			return fmt.Errorf("sender %s: %w", s.player, err)
		}
	}
	t := time.NewTimer(ioTimeout)
	defer t.Stop()
	select {
	case <-w.done:
		return nil
	case <-t.C:
		return fmt.Errorf("sender %s: its own last message did not come back within %s", s.player, ioTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
