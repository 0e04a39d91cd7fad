package loadtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/protocol"
)

// resumeStats counts what the resumes delivered.
type resumeStats struct {
	times     []time.Duration
	lost      int // messages never received (in a gap, or skipped)
	doubled   int // messages received again above the client's position
	belowPos  int // frames at or below the client's position (a real client drops them)
	gaps      int
	failed    int
	firstFail error
}

// resume has two members in a relay room. Iterations times: the victim's
// TCP connection is cut with a reset, the other member sends Missed
// messages to the room and waits until they are all through the room, then
// the victim reconnects with its resume token and positions. The time is
// from the start of the new TCP connect to the receipt of the last missed
// message; every missed message must arrive exactly once, in order.
func (r *runner) resume(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	rep := r.newReport(fmt.Sprintf("%d cuts of a member of a 2-player relay room, %d messages missed per cut, %d-byte payload",
		cfg.Iterations, cfg.Missed, cfg.Payload))
	o := r.openRooms(ctx, 2, 2)
	if len(o.clients) != 2 {
		closeAll(o.clients, nil)
		return nil, fmt.Errorf("the resume room did not open: %w", o.firstErr)
	}
	victim, sender := o.clients[0], o.clients[1]
	defer func() { closeAll([]*client{victim, sender}, nil) }()

	st := &resumeStats{}
	end := time.Now().Add(cfg.Duration)
	r.logf("%d resumes of %d missed messages", cfg.Iterations, cfg.Missed)
	u := r.startUsage()
	for it := range cfg.Iterations {
		if time.Now().After(end) || ctx.Err() != nil {
			rep.note("stopped after %d of %d iterations: --duration %s passed", it, cfg.Iterations, cfg.Duration)
			break
		}
		if err := r.resumeOnce(ctx, victim, sender, uint32(it), st); err != nil {
			st.failed++
			if st.firstFail == nil {
				st.firstFail = err
			}
			var se *serverError
			var ce closedError
			if errors.As(err, &se) || errors.As(err, &ce) || st.failed > 5 {
				return nil, fmt.Errorf("resume %d: %w", it, err)
			}
		}
	}
	p := u.stop()

	h := new(Histogram)
	for _, d := range st.times {
		h.Record(d)
	}
	rep.info("resumes", float64(len(st.times)), UnitCount)
	rep.latency("connect → last replayed message", h, 0, 10*time.Millisecond)
	rep.atMost("messages lost", float64(st.lost), UnitCount, 0, "0")
	rep.atMost("messages received twice", float64(st.doubled), UnitCount, 0, "0")
	rep.info("frames at or below the client's position", float64(st.belowPos), UnitCount)
	rep.info("gaps (replay buffer exceeded)", float64(st.gaps), UnitCount)
	rep.usageMeasures(p, 0)
	if st.failed > 0 {
		rep.note("%d resumes failed; first: %v", st.failed, st.firstFail)
	}
	return rep, nil
}

func (r *runner) resumeOnce(ctx context.Context, victim, sender *client, it uint32, st *resumeStats) error {
	missed := r.cfg.Missed
	victim.cut()

	// The other member sends the messages the victim misses, to all, and
	// waits for its own copies: then the room has put them all in its
	// stream.
	rm := &protocol.RoomMessage{RoomId: sender.roomID, Topic: "r", Data: make([]byte, r.cfg.Payload)}
	env := &protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: rm}}
	binary.BigEndian.PutUint32(rm.Data, it)
	for k := range missed {
		binary.BigEndian.PutUint32(rm.Data[4:], uint32(k))
		if err := sender.reliable(env); err != nil {
			return fmt.Errorf("sender: %w", err)
		}
	}
	deadline := time.Now().Add(ioTimeout)
	for {
		v, err := sender.nextBefore(deadline)
		if err != nil {
			return fmt.Errorf("sender: %w", err)
		}
		sender.track(v)
		if v.kind == kindError {
			return fmt.Errorf("sender: %w", replyError(v, sender.codec))
		}
		if v.kind != kindRoomMessage {
			continue
		}
		if data, from := v.messageData(); string(from) == sender.player && len(data) >= 8 &&
			binary.BigEndian.Uint32(data) == it && binary.BigEndian.Uint32(data[4:]) == uint32(missed-1) {
			break
		}
	}

	token, err := r.freshToken(victim.idx)
	if err != nil {
		return err
	}
	positions := victim.positions()
	t0 := time.Now()
	if err := victim.dial(ctx); err != nil {
		return err
	}
	conn, err := victim.connect(token, victim.resumeToken, positions)
	if err != nil {
		return err
	}
	if !conn.GetResumed() {
		return errors.New("the node did not resume the session")
	}
	deadline = t0.Add(ioTimeout)
	next := 0 // the index of the next missed message expected
	for next < missed {
		v, err := victim.nextBefore(deadline)
		if err != nil {
			st.lost += missed - next
			return fmt.Errorf("victim after %d of %d messages: %w", next, missed, err)
		}
		isNew := victim.track(v)
		switch v.kind {
		case kindGap:
			env, err := v.decode(victim.codec)
			if err != nil {
				return err
			}
			g := env.GetGap()
			victim.epoch, victim.roomSeq = g.GetEpoch(), g.GetSeq()
			st.gaps++
			st.lost += missed - next
			next = missed
		case kindError:
			return replyError(v, victim.codec)
		case kindRoomMessage:
			if !isNew {
				st.belowPos++
				continue
			}
			data, _ := v.messageData()
			if len(data) < 8 {
				continue
			}
			gotIt, k := binary.BigEndian.Uint32(data), int(binary.BigEndian.Uint32(data[4:]))
			switch {
			case gotIt != it || k < next:
				st.doubled++
			case k > next:
				st.lost += k - next
				next = k + 1
			default:
				next++
			}
		}
	}
	st.times = append(st.times, time.Since(t0))
	return victim.ack()
}
