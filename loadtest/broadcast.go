package loadtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// broadcastRun is the state the broadcast scenario's readers share.
type broadcastRun struct {
	r         *runner
	measuring atomic.Bool
	delivered atomic.Uint64 // room messages received while measuring
	sent      atomic.Uint64 // room messages sent while measuring
	refused   atomic.Uint64 // error replies (rate limits and the like)
	latency   Histogram
	// credits, per room in saturation mode: a sender takes one to send and
	// gets it back when its own message comes back.
	credits []chan struct{}
	senders map[*client]int // sender → room index
}

// broadcast runs Rooms rooms of RoomSize players in which the first member
// sends a Payload-byte room_message to all (DELIVERY_ALL) Rate times a
// second, or as fast as the server delivers them with Rate 0; every member
// times each message from its send to its receipt (sender and receivers
// share this process's monotonic clock).
func (r *runner) broadcast(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	mode := fmt.Sprintf("%d messages/s per room", cfg.Rate)
	if cfg.Rate == 0 {
		mode = fmt.Sprintf("as fast as delivered, %d in flight per room", cfg.Window)
	}
	rep := r.newReport(fmt.Sprintf("%d relay rooms × %d players, one sender per room, %s, %d-byte payload, %s measured",
		cfg.Rooms, cfg.RoomSize, mode, cfg.Payload, cfg.Duration))
	r.logf("opening %d rooms of %d", cfg.Rooms, cfg.RoomSize)
	o := r.openRooms(ctx, cfg.Clients, cfg.RoomSize)
	b := &broadcastRun{r: r, senders: make(map[*client]int)}
	var rooms [][]*client
	for _, room := range o.perRoom {
		if len(room) >= 2 {
			b.senders[room[0]] = len(rooms)
			rooms = append(rooms, room)
		}
	}
	b.credits = make([]chan struct{}, len(rooms))
	for i := range b.credits {
		b.credits[i] = make(chan struct{}, cfg.Window)
		for range cfg.Window {
			b.credits[i] <- struct{}{}
		}
	}
	rs := new(readers)
	for _, c := range o.clients {
		rs.start(c, b.receive)
	}
	defer closeAll(o.clients, rs)
	if len(rooms) == 0 {
		return nil, fmt.Errorf("no room has a sender and a receiver: %w", o.firstErr)
	}

	stop := make(chan struct{})
	var sendErrs sync.Map
	var wg sync.WaitGroup
	for i, room := range rooms {
		wg.Go(func() {
			if err := b.send(ctx, room[0], i, len(rooms), stop); err != nil {
				sendErrs.Store(room[0].player, err)
			}
		})
	}
	warm := min(time.Second, cfg.Duration/5)
	r.logf("%d rooms sending; %s warm-up, then %s measured", len(rooms), warm, cfg.Duration)
	sleep(ctx, warm)
	b.measuring.Store(true)
	u := r.startUsage()
	sleep(ctx, cfg.Duration)
	b.measuring.Store(false)
	p := u.stop()
	close(stop)
	wg.Wait()

	receivers := 0
	for _, room := range rooms {
		receivers += len(room)
	}
	delivered := float64(b.delivered.Load()) / p.wall.Seconds()
	if cfg.Rate > 0 {
		offered := float64(receivers * cfg.Rate)
		rep.atLeast("frames delivered", delivered, UnitPerSecond, 0.99*offered, fmt.Sprintf("≥ 99%% of %s/s offered", groupThousands(int64(offered))))
		rep.latency("send → receipt", &b.latency, 0, 2*time.Millisecond)
		rep.usageMeasures(p, 45)
	} else {
		rep.info("frames delivered", delivered, UnitPerSecond)
		rep.latency("send → receipt", &b.latency, 0, 0)
		rep.note("in saturation the latency is the queue that --window keeps full (%d messages × %d members per room), not a target", cfg.Window, cfg.RoomSize)
		rep.usageMeasures(p, 0)
		if p.serverMeasure && p.serverCPU > 0 {
			perCore := float64(b.delivered.Load()) / p.serverCPU.Seconds()
			rep.atLeast("frames delivered per server core", perCore, UnitPerSecond, 200_000, "≥ 200,000/s")
		}
	}
	rep.info("messages sent", float64(b.sent.Load())/p.wall.Seconds(), UnitPerSecond)
	if p.serverMeasure && b.delivered.Load() > 0 {
		rep.info("server CPU per delivered frame", float64(p.serverCPU)/float64(time.Microsecond)/float64(b.delivered.Load()), UnitMicroseconds)
		rep.info("server RSS", float64(p.serverRSSKiB)/1024, UnitMiB)
	}
	if n := b.refused.Load(); n > 0 {
		rep.note("the server refused %d messages: raise its --msg-rate, --msg-burst and --byte-rate", n)
	}
	sendErrs.Range(func(k, v any) bool {
		rep.note("sender %s stopped: %v", k, hint(v.(error)))
		return false
	})
	rep.noteFailures(o, rs)
	return rep, nil
}

// send is one room's sender: at the rate, spread over the period by the
// room's index, or in saturation as credits come back.
func (b *broadcastRun) send(ctx context.Context, c *client, i, rooms int, stop <-chan struct{}) error {
	cfg := b.r.cfg
	rm := &protocol.RoomMessage{RoomId: c.roomID, Topic: "b", Data: make([]byte, cfg.Payload)}
	env := &protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: rm}}
	var n uint64
	sendOne := func() error {
		n++
		binary.BigEndian.PutUint64(rm.Data, uint64(time.Since(b.r.base)))
		binary.BigEndian.PutUint64(rm.Data[8:], n)
		if err := c.reliable(env); err != nil {
			return err
		}
		if b.measuring.Load() {
			b.sent.Add(1)
		}
		return nil
	}
	if cfg.Rate == 0 {
		credits := b.credits[i]
		for {
			select {
			case <-credits:
			case <-stop:
				return nil
			case <-ctx.Done():
				return nil
			}
			if err := sendOne(); err != nil {
				return err
			}
		}
	}
	period := time.Second / time.Duration(cfg.Rate)
	select { // spread the rooms' sends over the period
	case <-time.After(period * time.Duration(i) / time.Duration(rooms)):
	case <-stop:
		return nil
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := sendOne(); err != nil {
			return err
		}
		select {
		case <-t.C:
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// receive is every member's reader: it times each room message and, for a
// sender in saturation mode, returns a credit for each of its own messages.
func (b *broadcastRun) receive(c *client, v *view) error {
	switch v.kind {
	case kindRoomMessage:
		data, from := v.messageData()
		if len(data) < 16 {
			return nil
		}
		if b.measuring.Load() {
			b.latency.Record(time.Since(b.r.base) - time.Duration(binary.BigEndian.Uint64(data)))
			b.delivered.Add(1)
		}
		if b.r.cfg.Rate == 0 && string(from) == c.player {
			if i, ok := b.senders[c]; ok {
				select {
				case b.credits[i] <- struct{}{}:
				default:
				}
			}
		}
	case kindError:
		err := replyError(v, c.codec)
		if se, ok := err.(*serverError); ok && se.code == tandem.ERateLimited {
			b.refused.Add(1)
			if b.r.cfg.Rate == 0 { // the refused message never comes back
				if i, ok := b.senders[c]; ok {
					select {
					case b.credits[i] <- struct{}{}:
					default:
					}
				}
			}
			return nil
		}
		return err
	}
	return nil
}
