package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/tandemhq/tandem/protocol"
	gosdk "github.com/tandemhq/tandem/sdk/go"
)

// The SDK bots (--bots sdk) drive the scenarios through the Go SDK, one
// gosdk.Client per bot, as a game would: the SDK owns the connection, its
// heartbeats, acks, resend buffer and reconnects, and the bot sees only its
// events. They measure what a player of the SDK sees (its decoding and
// event channel included), not the node alone: the raw bots are the
// benchmark. The counts are the raw bots': room messages from RoomMessage
// events, error frames from ErrorEvent, closes from the close codes of
// Disconnected and Closed, and resumes by outcome: Resumed then the room's
// stream is replayed, Resumed then a Gap is snapshot, SessionLost is
// expired.

// sdkBot is one player driven through the Go SDK.
type sdkBot struct {
	frameCounts // in: events read; out: requests and room messages sent
	r           *runner
	idx         int
	player      string
	c           *gosdk.Client
	room        atomic.Pointer[gosdk.Room] // the relay room it joined
	// on, set before the bot dials, sees every event after it is counted,
	// on the bot's event goroutine: it must not block.
	on func(b *sdkBot, ev gosdk.Event)
	// credits: a saturation sender's messages in flight (broadcast, rate 0).
	credits chan struct{}
	// mm carries what the matchmaking player waits for after its seat (its
	// ticket ended, its room left) from on to the player's goroutine.
	mm chan gosdk.Event
	// wait is what the bot waits for in a reconnect storm (nil: nothing).
	wait atomic.Pointer[stormWait]

	addr    atomic.Value // string: the local address of its connection, which the fault proxy knows it by
	closing atomic.Bool  // the run closes it: its disconnection is not counted
	cut     atomic.Bool  // the run cut it on purpose: its next Disconnected is not counted
	done    chan struct{}

	resuming bool // owned by the event goroutine: Resumed, outcome not known yet
	tokens   atomic.Int64
}

// sdkCounts is what the SDK bots of a run met that the raw counts have no
// place for: disconnections the SDK recovered from, and clients it stopped.
type sdkCounts struct {
	disconnects atomic.Int64
	mu          sync.Mutex
	closed      int
	closedErr   error
}

// newSDKBot makes bot i; setup, if set, prepares it before it dials.
func (r *runner) newSDKBot(i int, setup func(*sdkBot)) *sdkBot {
	b := &sdkBot{r: r, idx: i, player: r.playerID(i), done: make(chan struct{})}
	if setup != nil {
		setup(b)
	}
	r.addBot(&b.frameCounts)
	return b
}

// dial connects the bot's client (through the fault proxy when it runs)
// and starts reading its events.
func (b *sdkBot) dial(ctx context.Context) error {
	r := b.r
	c, err := gosdk.Dial(ctx, gosdk.Config{
		URL:   r.url,
		Codec: r.cfg.codec,
		SDK:   "tandem-loadtest-sdk",
		// The first connect uses the token signed before the run; a
		// reconnect signs a fresh one, as a game's token source would.
		Token: func(context.Context) (string, error) {
			if b.tokens.Add(1) == 1 {
				return r.tokens[b.idx], nil
			}
			return r.freshToken(b.idx)
		},
		NetDial: b.netDial,
	})
	if err != nil {
		close(b.done)
		return fmt.Errorf("%s: %w", b.player, err)
	}
	b.c = c
	go b.events()
	return nil
}

// netDial opens the bot's TCP connections: it waits while the run holds
// the network down (a reconnect storm's senders are sending), and records
// the local address, by which the fault proxy's connection is found.
func (b *sdkBot) netDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if down := b.r.netDown.Load(); down != nil {
		select {
		case <-*down:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err == nil {
		b.addr.Store(nc.LocalAddr().String())
	}
	return nc, err
}

// join creates a relay room (roomID "") or joins roomID, and returns the
// room's id.
func (b *sdkBot) join(ctx context.Context, roomID string) (string, error) {
	o := gosdk.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_JOIN, RoomID: roomID}
	if roomID == "" {
		o = gosdk.JoinOptions{Mode: protocol.JoinMode_JOIN_MODE_CREATE, RoomType: "relay"}
	}
	b.out.Add(1)
	room, err := b.c.Join(ctx, o)
	if err != nil {
		return "", fmt.Errorf("%s: join: %w", b.player, err)
	}
	b.room.Store(room)
	return room.ID(), nil
}

// events reads the client's events until it stops, counts them for the
// report and hands them to on.
func (b *sdkBot) events() {
	defer close(b.done)
	r := b.r
	for ev := range b.c.Events() {
		b.in.Add(1)
		switch e := ev.(type) {
		case *gosdk.RoomMessage:
			b.resolveResume(outcomeReplayed)
		case *gosdk.Gap:
			b.resolveResume(outcomeSnapshot)
		case *gosdk.Resumed:
			b.resuming = true
		case *gosdk.SessionLost:
			b.resolveResume(outcomeReplayed)
			r.resumes.add(outcomeExpired)
		case *gosdk.ErrorEvent:
			r.errors.add(e.Err.Name)
		case *gosdk.Disconnected:
			b.resolveResume(outcomeReplayed)
			if !b.cut.Swap(false) && !b.closing.Load() {
				r.sdkCounts.disconnects.Add(1)
				r.countSDKClose(e.Err)
			}
		case *gosdk.Closed:
			r.countSDKClose(e.Err)
			r.sdkCounts.mu.Lock()
			r.sdkCounts.closed++
			if r.sdkCounts.closedErr == nil {
				r.sdkCounts.closedErr = fmt.Errorf("%s: %w", b.player, e.Err)
			}
			r.sdkCounts.mu.Unlock()
		}
		if b.on != nil {
			b.on(b, ev)
		}
	}
	b.resolveResume(outcomeReplayed)
}

// resolveResume counts the outcome of a resume whose outcome was not known
// yet: the first frame of the replay says it (a Gap: snapshot), and a
// resume that replayed nothing counts as replayed.
func (b *sdkBot) resolveResume(outcome string) {
	if b.resuming {
		b.resuming = false
		b.r.resumes.add(outcome)
	}
}

// countSDKClose counts a connection the SDK saw end: by its close code, or
// as abnormal when it ended without one (a reset, a heartbeat timeout).
func (r *runner) countSDKClose(err error) {
	var ce *gosdk.CloseError
	if errors.As(err, &ce) {
		r.countClose(closedError{code: ce.Code})
		return
	}
	r.closes.add(protocol.CloseAbnormal.String())
}

// sdkOpened is the outcome of openSDKRooms.
type sdkOpened struct {
	openStats
	bots    []*sdkBot   // the bots that joined, in index order
	all     []*sdkBot   // every bot made, to close
	perRoom [][]*sdkBot // the joined members of each room, creator first
}

// openSDKRooms opens n SDK bots in relay rooms of size members, as
// openRooms does for raw clients; setup prepares each bot before it dials.
func (r *runner) openSDKRooms(ctx context.Context, n, size int, setup func(*sdkBot)) *sdkOpened {
	all := make([]*sdkBot, n)
	for i := range all {
		all[i] = r.newSDKBot(i, setup)
	}
	ok, st := r.openGroups(ctx, n, size, func(ctx context.Context, i int, roomID string) (string, error) {
		b := all[i]
		if err := b.dial(ctx); err != nil {
			return "", err
		}
		return b.join(ctx, roomID)
	})
	o := &sdkOpened{openStats: st, all: all}
	o.bots, o.perRoom = grouped(all, ok, size)
	return o
}

// closeSDK closes every bot's client normally and waits until their event
// goroutines are done.
func closeSDK(bots []*sdkBot) {
	var wg sync.WaitGroup
	for _, b := range bots {
		b.closing.Store(true)
		if b.c != nil {
			wg.Go(func() { _ = b.c.Close() })
		}
	}
	wg.Wait()
	for _, b := range bots {
		if b.c != nil { // a bot never dialed, or whose dial failed, has no event goroutine
			<-b.done
		}
	}
}

// noteSDK adds what the SDK bots met to a report: disconnections the SDK
// recovered from, and clients the server closed for good.
func (r *runner) noteSDK(rep *Report) {
	if n := r.sdkCounts.disconnects.Load(); n > 0 {
		rep.note("the bots were disconnected %d times during the run; the SDK reconnected by itself (see closes by code)", n)
	}
	r.sdkCounts.mu.Lock()
	defer r.sdkCounts.mu.Unlock()
	if r.sdkCounts.closed > 0 {
		rep.note("%d SDK clients were lost for good (a final close); first: %v", r.sdkCounts.closed, hint(r.sdkCounts.closedErr))
	}
}

// openSDKFanOut opens the SDK bots of a chat or broadcast run, as
// openFanOut does for raw clients.
func (r *runner) openSDKFanOut(ctx context.Context, b *broadcastRun, everyone bool) (*fanOut, func()) {
	cfg := r.cfg
	o := r.openSDKRooms(ctx, cfg.Clients, cfg.RoomSize, func(bot *sdkBot) {
		bot.on = b.sdkReceive
		if !everyone && cfg.Rate == 0 && bot.idx%cfg.RoomSize == 0 {
			bot.credits = newCredits(cfg.Window)
		}
	})
	senders, rooms := pickSenders(o.perRoom, everyone)
	f := &fanOut{rooms: rooms, firstErr: o.firstErr}
	for _, bot := range senders {
		f.senders = append(f.senders, fanOutSender{bot.player, func(ctx context.Context, i, n int, stop <-chan struct{}) error {
			room := bot.room.Load()
			data := make([]byte, cfg.Payload)
			return b.pace(ctx, i, n, bot.credits, stop, func(seq uint64) error {
				b.stamp(data, seq)
				bot.out.Add(1)
				return room.Send(ctx, "b", data) // the SDK encodes data at once
			})
		}})
	}
	f.failures = func(rep *Report) {
		rep.noteFailures(&o.openStats, nil)
		r.noteSDK(rep)
	}
	return f, func() { closeSDK(o.all) }
}

// sdkReceive is every SDK bot's handler in chat and broadcast: it times
// each room message and gives a saturation sender its credits back.
func (b *broadcastRun) sdkReceive(bot *sdkBot, ev gosdk.Event) {
	switch e := ev.(type) {
	case *gosdk.RoomMessage:
		if b.record(e.Data) && bot.credits != nil && e.From == bot.player {
			credit(bot.credits)
		}
	case *gosdk.ErrorEvent:
		if e.Err.Code == gosdk.CodeRateLimited {
			b.refused.Add(1)
			if bot.credits != nil { // the refused message never comes back
				credit(bot.credits)
			}
		}
	}
}
