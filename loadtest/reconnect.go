package loadtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// Outcomes of a resume, as the node's tandem_resumes_total counts them.
const (
	outcomeReplayed = "replayed" // resumed; the missed frames were replayed
	outcomeSnapshot = "snapshot" // resumed; a room's stream had a gap: its snapshot instead
	outcomeExpired  = "expired"  // the session was no longer held: a new one, the room joined again
)

// stormRun is what the storms of a reconnect run count.
type stormRun struct {
	r        *runner
	outcomes tally
	latency  Histogram     // a victim's dial → the pong after its replay (SDK: its cut → its missed messages)
	resumed  atomic.Int64  // resumes that succeeded (replayed or snapshot)
	replayed atomic.Int64  // room messages replayed
	phase    time.Duration // the storms' resume phases, end to end
	mu       sync.Mutex
	failed   int
	firstErr error
}

// reconnect opens Clients connections in relay rooms of RoomSize; the
// first member of each room is its sender, the others are victims.
// Iterations times: every victim is cut at once (its proxied connection
// reset when the fault proxy runs, otherwise its own socket reset), each
// sender sends Missed messages to its room and waits for its own copies,
// then every victim resumes at once (Concurrency at a time) with its
// resume token and positions, and reads until the pong of a ping sent
// after the replay. Resumes per second are resumes / the time from the
// first dial to the last pong of each storm.
func (r *runner) reconnect(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	how := "its socket reset"
	if r.faults != nil {
		how = "its proxied connection reset"
	}
	latency := "dial → replay done"
	if r.sdk() {
		how = "its proxied connection reset; the SDK reconnects by itself once the senders are done"
		latency = "cut → missed messages received"
	}
	rep := r.newReport(fmt.Sprintf("%d connections in relay rooms of %d; %d storms: every member but the sender cut at once (%s), %d messages missed, all resume",
		cfg.Clients, cfg.RoomSize, cfg.Iterations, how, cfg.Missed))
	st := &stormRun{r: r}
	var o *openStats
	var rooms, victims int
	// storm runs storm it and returns the victims still usable.
	var storm func(ctx context.Context, it uint32) (int, error)
	if r.sdk() {
		so := r.openSDKRooms(ctx, cfg.Clients, cfg.RoomSize, func(b *sdkBot) {
			b.on = st.sdkEvent
		})
		defer closeSDK(so.all)
		senders, vs := splitRooms(so.perRoom)
		o, rooms, victims = &so.openStats, len(senders), len(vs)
		storm = func(ctx context.Context, it uint32) (int, error) {
			var err error
			vs, err = st.sdkStorm(ctx, it, senders, vs)
			return len(vs), err
		}
	} else {
		ro := r.openRooms(ctx, cfg.Clients, cfg.RoomSize)
		defer func() { closeAll(ro.clients, nil) }()
		senders, vs := splitRooms(ro.perRoom)
		o, rooms, victims = &ro.openStats, len(senders), len(vs)
		storm = func(ctx context.Context, it uint32) (int, error) {
			var err error
			vs, err = st.storm(ctx, it, senders, vs)
			return len(vs), err
		}
	}
	if victims == 0 {
		return nil, fmt.Errorf("no room has a sender and a victim: %w", o.firstErr)
	}
	r.setStatus(func() string {
		return fmt.Sprintf("%d resumed, %s", st.resumed.Load(), formatCounts(st.outcomes.counts()))
	})
	end := time.Now().Add(cfg.Duration)
	r.logf("%d storms of %d victims in %d rooms", cfg.Iterations, victims, rooms)
	u := r.startUsage()
	storms := 0
	for it := range cfg.Iterations {
		if time.Now().After(end) || ctx.Err() != nil {
			rep.note("stopped after %d of %d storms: --duration %s passed", it, cfg.Iterations, cfg.Duration)
			break
		}
		left, err := storm(ctx, uint32(it))
		if err != nil {
			return nil, fmt.Errorf("storm %d: %w", it, err)
		}
		storms++
		if left == 0 {
			rep.note("every victim failed by storm %d", it)
			break
		}
	}
	p := u.stop()

	rep.Resumes = st.outcomes.counts()
	resumed := st.resumed.Load()
	rep.info("storms", float64(storms), UnitCount)
	if st.phase > 0 {
		rep.info("resumes", float64(resumed)/st.phase.Seconds(), UnitPerSecond)
	}
	rep.info("resumes done", float64(resumed), UnitCount)
	rep.latency(latency, &st.latency, 0, 0)
	rep.info("room messages replayed", float64(st.replayed.Load()), UnitCount)
	rep.usageMeasures(p, 0)
	if st.failed > 0 {
		rep.note("%d resumes failed (those victims sat out the later storms); first: %v", st.failed, hint(st.firstErr))
	}
	rep.noteFailures(o, nil)
	if r.sdk() {
		r.noteSDK(rep)
	}
	return rep, nil
}

// splitRooms returns the first member of each room of two or more, the
// sender, and the others, the victims.
func splitRooms[B any](perRoom [][]B) (senders, victims []B) {
	for _, room := range perRoom {
		if len(room) >= 2 {
			senders = append(senders, room[0])
			victims = append(victims, room[1:]...)
		}
	}
	return senders, victims
}

// fail counts a victim whose resume failed.
func (st *stormRun) fail(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failed++
	if st.firstErr == nil {
		st.firstErr = err
	}
}

// storm cuts every victim, has the senders send, resumes every victim and
// returns the victims still usable.
func (st *stormRun) storm(ctx context.Context, it uint32, senders, victims []*client) ([]*client, error) {
	r := st.r
	tokens := make([]string, len(victims))
	for i, v := range victims {
		tok, err := r.freshToken(v.idx)
		if err != nil {
			return nil, err
		}
		tokens[i] = tok
	}
	if r.faults != nil {
		conns := r.faults.conns()
		for _, v := range victims {
			if pc := conns[v.nc.LocalAddr().String()]; pc != nil {
				pc.Reset()
			}
			_ = v.nc.Close()
		}
	} else {
		for _, v := range victims {
			v.cut()
		}
	}
	if r.cfg.Missed > 0 {
		var wg sync.WaitGroup
		errs := make([]error, len(senders))
		for i, s := range senders {
			wg.Go(func() { errs[i] = sendMissed(s, it, r.cfg.Missed, r.cfg.Payload) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}

	ok := make([]bool, len(victims))
	sem := make(chan struct{}, r.cfg.Concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for i, v := range victims {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if err := st.resumeOne(ctx, v, tokens[i], it); err != nil {
				st.fail(fmt.Errorf("%s: %w", v.player, err))
				return
			}
			ok[i] = true
		})
	}
	wg.Wait()
	st.phase += time.Since(start)
	var left []*client
	for i, v := range victims {
		if ok[i] {
			left = append(left, v)
		}
	}
	return left, ctx.Err()
}

// sendMissed sends n messages to the sender's room and waits for its own
// copy of the last: then the room has them all in its stream.
func sendMissed(s *client, it uint32, n, payload int) error {
	rm := &protocol.RoomMessage{RoomId: s.roomID, Topic: "r", Data: make([]byte, payload)}
	env := &protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: rm}}
	binary.BigEndian.PutUint32(rm.Data, it)
	for k := range n {
		binary.BigEndian.PutUint32(rm.Data[4:], uint32(k))
		if err := s.reliable(env); err != nil {
			return fmt.Errorf("sender %s: %w", s.player, err)
		}
	}
	deadline := time.Now().Add(ioTimeout)
	for {
		v, err := s.nextBefore(deadline)
		if err != nil {
			return fmt.Errorf("sender %s: %w", s.player, err)
		}
		s.track(v)
		if v.kind == kindError {
			return fmt.Errorf("sender %s: %w", s.player, replyError(v, s.codec))
		}
		if v.kind != kindRoomMessage {
			continue
		}
		if data, from := v.messageData(); string(from) == s.player && len(data) >= 8 &&
			binary.BigEndian.Uint32(data) == it && binary.BigEndian.Uint32(data[4:]) == uint32(n-1) {
			return s.ack()
		}
	}
}

// resumeOne resumes a cut victim and classifies the outcome; a session no
// longer held is replaced by a new one that joins the room again, so the
// victim takes part in the next storm. A resumed victim reads until it has
// the pong of a ping sent after the connect and the last missed message of
// storm it (or a gap): the room replays from its own goroutine, so the
// pong alone does not mark the end of the replay.
func (st *stormRun) resumeOne(ctx context.Context, v *client, token string, it uint32) error {
	positions := v.positions()
	t0 := time.Now()
	if err := v.dial(ctx); err != nil {
		return err
	}
	conn, err := v.connect(token, v.resumeToken, positions)
	var se *serverError
	switch {
	case errors.As(err, &se) && se.code == tandem.ENotFound:
		st.outcomes.add(outcomeExpired)
		v.nc.Close()
		room := v.roomID
		v.seq, v.sessSeq, v.roomID, v.roomSeq = 0, 0, "", 0 // a new session counts from the start
		if err := v.open(ctx, token, room); err != nil {
			return fmt.Errorf("a new session after the old expired: %w", err)
		}
		return nil
	case err != nil:
		v.nc.Close()
		return err
	case !conn.GetResumed():
		v.nc.Close()
		return errors.New("the node answered a resume with a new session")
	}
	ping := &protocol.Ping{TimeUs: time.Now().UnixMicro()}
	if err := v.send(&protocol.Envelope{Body: &protocol.Envelope_Ping{Ping: ping}}); err != nil {
		return err
	}
	outcome := outcomeReplayed
	missed := st.r.cfg.Missed
	pong, last := false, missed == 0
	deadline := t0.Add(ioTimeout)
	for !pong || !last {
		f, err := v.nextBefore(deadline)
		if err != nil {
			return fmt.Errorf("after the resume: %w", err)
		}
		isNew := v.track(f)
		switch f.kind {
		case kindGap:
			env, err := f.decode(v.codec)
			if err != nil {
				return err
			}
			g := env.GetGap()
			v.epoch, v.roomSeq = g.GetEpoch(), g.GetSeq()
			outcome, last = outcomeSnapshot, true
		case kindRoomMessage:
			if !isNew {
				continue
			}
			st.replayed.Add(1)
			if data, _ := f.messageData(); len(data) >= 8 &&
				binary.BigEndian.Uint32(data) == it && binary.BigEndian.Uint32(data[4:]) == uint32(missed-1) {
				last = true
			}
		case kindError:
			return replyError(f, v.codec)
		case kindPong:
			pong = pong || f.timeUs() == ping.TimeUs
		}
	}
	st.latency.Record(time.Since(t0))
	st.resumed.Add(1)
	st.outcomes.add(outcome)
	return v.ack()
}
