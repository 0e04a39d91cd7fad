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
	b := &broadcastRun{r: r}
	f, closeBots := r.openFanOut(ctx, b, false)
	defer closeBots()
	if len(f.senders) == 0 {
		return nil, fmt.Errorf("no room has a sender and a receiver: %w", f.firstErr)
	}
	p, sendErrs := b.drive(ctx, f, "rooms")

	receivers := 0
	for _, n := range f.rooms {
		receivers += n
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
	b.notes(rep, f, sendErrs)
	return rep, nil
}

// fanOut is what a chat or broadcast run drives, whatever its bots.
type fanOut struct {
	rooms    []int // the members of each room that takes part
	senders  []fanOutSender
	firstErr error             // the first bot that failed to open
	failures func(rep *Report) // notes the bots that failed or were lost
}

type fanOutSender struct {
	player string
	// send sends stamped messages as pace says until stop.
	send func(ctx context.Context, i, n int, stop <-chan struct{}) error
}

// pickSenders returns the senders of a run's rooms: every member (chat),
// or the first member of each room that has a receiver too (broadcast);
// and the members of each room that takes part.
func pickSenders[B any](perRoom [][]B, everyone bool) (senders []B, rooms []int) {
	for _, room := range perRoom {
		switch {
		case everyone:
			senders = append(senders, room...)
			rooms = append(rooms, len(room))
		case len(room) >= 2:
			senders = append(senders, room[0])
			rooms = append(rooms, len(room))
		}
	}
	return senders, rooms
}

// openFanOut opens the bots of a chat (everyone sends) or broadcast run,
// each reading for b, and returns them with the function that closes them.
func (r *runner) openFanOut(ctx context.Context, b *broadcastRun, everyone bool) (*fanOut, func()) {
	if r.sdk() {
		return r.openSDKFanOut(ctx, b, everyone)
	}
	cfg := r.cfg
	o := r.openRooms(ctx, cfg.Clients, cfg.RoomSize)
	senders, rooms := pickSenders(o.perRoom, everyone)
	f := &fanOut{rooms: rooms, firstErr: o.firstErr}
	if !everyone {
		b.senders = make(map[*client]int)
		b.credits = make([]chan struct{}, len(senders))
		for i, c := range senders {
			b.senders[c] = i
			b.credits[i] = newCredits(cfg.Window)
		}
	}
	for _, c := range senders {
		f.senders = append(f.senders, fanOutSender{c.player, func(ctx context.Context, i, n int, stop <-chan struct{}) error {
			return b.send(ctx, c, i, n, stop)
		}})
	}
	rs := new(readers)
	for _, c := range o.clients {
		rs.start(c, b.receive)
	}
	f.failures = func(rep *Report) { rep.noteFailures(&o.openStats, rs) }
	return f, func() { closeAll(o.clients, rs) }
}

// newCredits returns a saturation sender's credits: n messages in flight.
func newCredits(n int) chan struct{} {
	ch := make(chan struct{}, n)
	for range n {
		ch <- struct{}{}
	}
	return ch
}

// credit gives a saturation sender a credit back.
func credit(credits chan struct{}) {
	select {
	case credits <- struct{}{}:
	default:
	}
}

// drive runs the senders of f: a warm-up, then Duration measured; it
// returns the measured phase and the senders that stopped on an error.
func (b *broadcastRun) drive(ctx context.Context, f *fanOut, what string) (phase, *sync.Map) {
	cfg := b.r.cfg
	stop := make(chan struct{})
	sendErrs := new(sync.Map)
	var wg sync.WaitGroup
	for i, s := range f.senders {
		wg.Go(func() {
			if err := s.send(ctx, i, len(f.senders), stop); err != nil {
				sendErrs.Store(s.player, err)
			}
		})
	}
	warm := min(time.Second, cfg.Duration/5)
	b.r.logf("%d %s sending; %s warm-up, then %s measured", len(f.senders), what, warm, cfg.Duration)
	sleep(ctx, warm)
	b.measuring.Store(true)
	u := b.r.startUsage()
	sleep(ctx, cfg.Duration)
	b.measuring.Store(false)
	p := u.stop()
	close(stop)
	wg.Wait()
	return p, sendErrs
}

// notes adds what the reader of a chat or broadcast report should know.
func (b *broadcastRun) notes(rep *Report, f *fanOut, sendErrs *sync.Map) {
	if n := b.refused.Load(); n > 0 {
		rep.note("the server refused %d messages: raise its --msg-rate, --msg-burst and --byte-rate", n)
	}
	sendErrs.Range(func(k, v any) bool {
		rep.note("sender %s stopped: %v", k, hint(v.(error)))
		return false
	})
	f.failures(rep)
}

// send is one raw sender: it sends stamped room messages as pace says.
func (b *broadcastRun) send(ctx context.Context, c *client, i, n int, stop <-chan struct{}) error {
	rm := &protocol.RoomMessage{RoomId: c.roomID, Topic: "b", Data: make([]byte, b.r.cfg.Payload)}
	env := &protocol.Envelope{Body: &protocol.Envelope_RoomMessage{RoomMessage: rm}}
	var credits chan struct{}
	if b.r.cfg.Rate == 0 {
		credits = b.credits[i]
	}
	return b.pace(ctx, i, n, credits, stop, func(seq uint64) error {
		b.stamp(rm.Data, seq)
		return c.reliable(env)
	})
}

// stamp writes the send time and the sender's message number at the start
// of data: receivers time the message from it.
func (b *broadcastRun) stamp(data []byte, seq uint64) {
	binary.BigEndian.PutUint64(data, uint64(time.Since(b.r.base)))
	binary.BigEndian.PutUint64(data[8:], seq)
}

// pace calls sendOne until stop: at the rate, the senders' sends spread
// over the period by the sender's index i of n, or in saturation as
// credits come back.
func (b *broadcastRun) pace(ctx context.Context, i, n int, credits chan struct{}, stop <-chan struct{}, sendOne func(seq uint64) error) error {
	cfg := b.r.cfg
	var seq uint64
	one := func() error {
		seq++
		if err := sendOne(seq); err != nil {
			return err
		}
		if b.measuring.Load() {
			b.sent.Add(1)
		}
		return nil
	}
	if cfg.Rate == 0 {
		for {
			select {
			case <-credits:
			case <-stop:
				return nil
			case <-ctx.Done():
				return nil
			}
			if err := one(); err != nil {
				return err
			}
		}
	}
	period := time.Second / time.Duration(cfg.Rate)
	select { // spread the senders' sends over the period
	case <-time.After(period * time.Duration(i) / time.Duration(n)):
	case <-stop:
		return nil
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := one(); err != nil {
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

// record times a room message from the stamp at the start of its data,
// while measuring; it reports whether the message carried a stamp.
func (b *broadcastRun) record(data []byte) bool {
	if len(data) < 16 {
		return false
	}
	if b.measuring.Load() {
		b.latency.Record(time.Since(b.r.base) - time.Duration(binary.BigEndian.Uint64(data)))
		b.delivered.Add(1)
	}
	return true
}

// receive is every raw member's reader: it times each room message and,
// for a sender in saturation mode, returns a credit for each of its own
// messages.
func (b *broadcastRun) receive(c *client, v *view) error {
	switch v.kind {
	case kindRoomMessage:
		data, from := v.messageData()
		if !b.record(data) {
			return nil
		}
		if b.r.cfg.Rate == 0 && string(from) == c.player {
			if i, ok := b.senders[c]; ok {
				credit(b.credits[i])
			}
		}
	case kindError:
		err := replyError(v, c.codec)
		if se, ok := err.(*serverError); ok && se.code == tandem.ERateLimited {
			b.refused.Add(1)
			if b.r.cfg.Rate == 0 { // the refused message never comes back
				if i, ok := b.senders[c]; ok {
					credit(b.credits[i])
				}
			}
			return nil
		}
		return err
	}
	return nil
}
