package loadtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tandemhq/tandem/protocol"
)

// echo runs Clients clients, each alone in its own relay room, that in turn
// send themselves a room_message (DELIVERY_LIST to their own player) and a
// ping, each time waiting for the answer.
func (r *runner) echo(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	rep := r.newReport(fmt.Sprintf("%d clients, each alone in a relay room, %d-byte messages, %s", cfg.Clients, cfg.Payload, cfg.Duration))
	o := r.openRooms(ctx, cfg.Clients, 1)
	defer closeAll(o.clients, nil)
	if o.failed > 0 {
		return nil, fmt.Errorf("%d clients did not connect: %w", o.failed, o.firstErr)
	}
	var msgRTT, pingRTT Histogram
	warm := min(time.Second, cfg.Duration/5)
	r.logf("%d clients echoing for %s after a %s warm-up", len(o.clients), cfg.Duration, warm)
	measureFrom := time.Now().Add(warm)
	end := measureFrom.Add(cfg.Duration)
	var u *usage
	uOnce := sync.Once{}
	var wg sync.WaitGroup
	errs := make([]error, len(o.clients))
	for i, c := range o.clients {
		wg.Go(func() {
			errs[i] = c.echoLoop(ctx, cfg.Payload, measureFrom, end, &msgRTT, &pingRTT, func() { uOnce.Do(func() { u = r.startUsage() }) })
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if u == nil {
		return nil, errors.New("the run ended before the warm-up did")
	}
	p := u.stop()
	rep.latency("room_message echo", &msgRTT, 100*time.Microsecond, time.Millisecond)
	rep.latency("ping → pong", &pingRTT, 0, 0)
	rep.usageMeasures(p, 0)
	return rep, nil
}

// echoLoop sends the client a message and a ping in turn until end,
// recording the round trips made after measureFrom.
func (c *client) echoLoop(ctx context.Context, payload int, measureFrom, end time.Time, msgRTT, pingRTT *Histogram, measuring func()) error {
	rm := &protocol.RoomMessage{RoomId: c.roomID, Topic: "echo", Data: make([]byte, payload),
		Delivery: protocol.Delivery_DELIVERY_LIST, To: []string{c.player}}
	msg := &protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: rm}}
	ping := &protocol.Ping{}
	pingEnv := &protocol.Envelope{Body: &protocol.Envelope_Ping{Ping: ping}}
	for n := uint64(1); ; n++ {
		now := time.Now()
		if now.After(end) || ctx.Err() != nil {
			return nil
		}
		record := !now.Before(measureFrom)
		if record {
			measuring()
		}

		binary.BigEndian.PutUint64(rm.Data, n)
		t0 := time.Now()
		if err := c.reliable(msg); err != nil {
			return err
		}
		if err := c.awaitEcho(n); err != nil {
			return err
		}
		if record {
			msgRTT.Record(time.Since(t0))
		}

		t0 = time.Now()
		ping.TimeUs = t0.UnixMicro()
		if err := c.send(pingEnv); err != nil {
			return err
		}
		if err := c.awaitPong(ping.TimeUs); err != nil {
			return err
		}
		if record {
			pingRTT.Record(time.Since(t0))
		}
	}
}

func (c *client) awaitEcho(n uint64) error {
	deadline := time.Now().Add(ioTimeout)
	for {
		v, err := c.nextBefore(deadline)
		if err != nil {
			return fmt.Errorf("%s: waiting for the echo: %w", c.player, err)
		}
		switch v.kind {
		case kindRoomMessage:
			if data, _ := v.messageData(); len(data) >= 8 && binary.BigEndian.Uint64(data) == n {
				return nil
			}
		case kindError:
			return fmt.Errorf("%s: %w", c.player, replyError(v, c.codec))
		}
	}
}

func (c *client) awaitPong(timeUs int64) error {
	deadline := time.Now().Add(ioTimeout)
	for {
		v, err := c.nextBefore(deadline)
		if err != nil {
			return fmt.Errorf("%s: waiting for the pong: %w", c.player, err)
		}
		switch v.kind {
		case kindPong:
			if v.timeUs() == timeUs {
				return nil
			}
		case kindError:
			return fmt.Errorf("%s: %w", c.player, replyError(v, c.codec))
		}
	}
}
