// Package room owns the room runtime: one goroutine per room that takes
// every input (joins, leaves, messages, ticks, admin actions) from a
// mailbox and calls the room's Handler; the room stream (sequence, replay
// buffer, fan-out of frames encoded once per codec); the Manager of a
// node's rooms; the state-sync helper; and the built-in room types. It knows
// nothing of WebSockets or codecs: members and an Encoder are given to it.
package room

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
)

// Member is a session as a room sees it. The session layer implements it.
// Every method is called on the room goroutine and must not block.
type Member interface {
	Player() *tandem.Player
	Codec() protocol.CodecID
	// RTT is the member's last measured round trip (0 if unknown).
	RTT() time.Duration
	// Deliver queues one encoded frame of the room's stream.
	Deliver(frame []byte)
	// Reply sends a frame on the member's own session stream.
	Reply(env *protocol.Envelope)
	// JoinedRoom tells the session it is now in the room. connected is
	// false when the session's connection is down (the member starts
	// disconnected); ok is false when the session has ended meanwhile (the
	// join is dropped).
	JoinedRoom(l Link) (connected, ok bool)
	// LeftRoom tells the session it is no longer in the room.
	LeftRoom(roomID string)
}

// Link is how a session reaches a room it is in. Each call names the
// session (the Member that joined): a call from another session of the same
// player — one that ended, say — is ignored by the room.
type Link interface {
	ID() string
	Disconnect(ctx context.Context, m Member) error
	Rejoin(ctx context.Context, m Member, pos *protocol.StreamPos) error
	Leave(ctx context.Context, m Member, reason protocol.LeaveReason) error
	Submit(ctx context.Context, m Member, msg Message) error
}

// Encoder turns an envelope into a complete frame for a codec, ready to be
// written to any connection using that codec.
type Encoder func(codec protocol.CodecID, env *protocol.Envelope) ([]byte, error)

// Config describes one room.
type Config struct {
	ID   string
	Type Type
	// Seed seeds the room's RNG; the same seed and inputs give the same room.
	Seed    uint64
	Options []byte
	Encoder Encoder
	// Clock stamps inputs with the room clock (time.Now by default).
	Clock func() time.Time
	// Start is the room clock during Init (Clock() when zero). Keep it with
	// the journal: Replay needs it for Init to see the same time.
	Start time.Time
	// Journal, if set, receives every input in the order applied.
	Journal func(Input)
	// ReplayCount and ReplayBytes bound the room stream's replay buffer.
	ReplayCount, ReplayBytes int
	// EmptyTimeout closes the room after it has had no members this long
	// (0: never).
	EmptyTimeout time.Duration
	// MailboxSize bounds the inputs waiting for the room (default 64; a
	// full mailbox makes senders wait).
	MailboxSize int
	Logger      *slog.Logger
	// OnClose runs on the room goroutine after Shutdown.
	OnClose func(r *Room)
	// OnGap, if set, is called when a rejoin could not be replayed and the
	// member got a gap with a snapshot instead.
	OnGap func()
	// TickObserver, if set, gets the duration of every tick.
	TickObserver func(took, interval time.Duration)
	// Labels are set before Init (SetLabel's limits apply): a match's
	// room is created with its queue and match.
	Labels map[string]string
	// OnRoster, if set, runs on the room goroutine after a member joined or
	// left or the room was locked or unlocked. It must not block: it runs
	// inside the room's inputs, ticks included.
	OnRoster func(r *Room, c RosterChange)
}

// InputKind says what an Input is.
type InputKind uint8

// The input kinds.
const (
	InputJoin InputKind = iota + 1
	InputLeave
	InputDisconnect
	InputRejoin
	InputMessage
	InputTick
	InputClose
	InputLock
	InputUnlock
	// InputReserve holds a place for a player who is on the way with a
	// seat reservation (Seat, until Until); InputUnreserve gives it up.
	InputReserve
	InputUnreserve
)

// Input is one thing that happened to a room, as recorded in its journal.
// Replaying the journal of a room with its seed reproduces its outputs.
type Input struct {
	Kind     InputKind
	At       time.Time
	Player   tandem.Player // join: the whole player; otherwise only ID
	Cid      uint64
	Metadata []byte
	Message  Message
	Reason   protocol.LeaveReason
	Pos      *protocol.StreamPos // rejoin: the client's position, if it has one
	// Seated marks a join that holds a seat reservation: it passes the
	// lock (JoinAttempt and the player limit still apply). Its Seat, if
	// the room holds it, is used up by the join, whatever the outcome.
	Seated bool
	// Seat names a reservation (reserve, unreserve, seated join): a key
	// derived from the seat's token, never the token itself.
	Seat  string
	Until time.Time // reserve: when the reservation lapses
}

type input struct {
	Input
	member  Member
	done    chan struct{} // closed once the input is applied (nil: nobody waits)
	notOpen *bool         // a trying join: set, instead of a reply, when the room takes no one
	result  *error        // reserve: set to the refusal, if any
	// query, when set, makes this no input at all: a read of the room's
	// state run on the room goroutine (Inspect), neither journaled nor
	// applied.
	query func()
}

// member is a player in the room.
type member struct {
	player    *tandem.Player
	conn      Member
	connected bool
	pending   bool // inside its Join hook: frames for it wait for its joined reply
	epoch     uint32
	joinSeq   uint64
}

// frame is one message of the room stream: who it is for, and its encodings
// (made on first use, once per codec).
type frame struct {
	to     []string // nil: every member
	except string
	env    *protocol.Envelope
	bytes  [protocol.NumCodecs][]byte
}

func (f *frame) addressedTo(playerID string) bool {
	if f.to == nil {
		return playerID != f.except
	}
	return slices.Contains(f.to, playerID)
}

// Room is one running room. Handler hooks get it to read the room's state
// and send; those methods are for the room goroutine only. Link methods and
// the Manager's are safe from any goroutine.
type Room struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	rng     *rand.Rand

	mailbox chan *input   // pointers: a slot costs 8 bytes, not an input
	done    chan struct{} // closed when the room goroutine ends

	// Owned by the room goroutine.
	now     time.Time
	tick    uint64
	seq     uint64
	members []*member // join order
	buffer  *ReplayBuffer[*frame]
	locked  bool
	labels  map[string]string // SetLabel
	// reserved holds the places promised to seat reservations, by seat
	// key, until their expiry: they count against MaxPlayers for every
	// join but the seated one that uses them. Nil until the first.
	reserved map[string]time.Time
	ending   bool // End was called: the room shuts down when the current input is applied
	closing  bool
	empty    time.Time // when the room became empty (zero: it has members)
	// inspecting: the handler's Snapshot runs for an inspection, and what
	// it returns reaches no client.
	inspecting bool

	info          infoCell
	roster        rosterCell
	rosterPending []RosterChange // changes of the input being applied
}

// New creates a room and runs its Init hook. Start runs it.
func New(cfg Config) (*Room, error) {
	if cfg.Type.New == nil {
		return nil, fmt.Errorf("room: type %q has no New", cfg.Type.Name)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Start.IsZero() {
		cfg.Start = cfg.Clock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MailboxSize <= 0 {
		cfg.MailboxSize = 64
	}
	if cfg.ReplayCount <= 0 {
		cfg.ReplayCount = 1024
	}
	if cfg.ReplayBytes <= 0 {
		cfg.ReplayBytes = 1 << 20
	}
	r := &Room{
		cfg:     cfg,
		handler: cfg.Type.New(),
		log:     cfg.Logger.With("room", cfg.ID, "room_type", cfg.Type.Name),
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		mailbox: make(chan *input, cfg.MailboxSize),
		done:    make(chan struct{}),
		buffer:  NewReplayBuffer[*frame](cfg.ReplayCount, cfg.ReplayBytes),
		now:     cfg.Start,
	}
	r.empty = r.now
	for _, k := range slices.Sorted(maps.Keys(cfg.Labels)) {
		if err := r.SetLabel(k, cfg.Labels[k]); err != nil {
			return nil, err
		}
	}
	r.publishInfo()
	r.publishRoster()
	if err := r.handler.Init(r, cfg.Options); err != nil {
		return nil, err
	}
	// What Init did (a lock) is in the roster the manager reports with
	// the room's creation; nobody observes the room before that.
	r.rosterPending = nil
	r.publishRoster()
	return r, nil
}

// Run is the room goroutine: it applies inputs and ticks until the room
// closes or ctx ends. It returns when the room has shut down.
func (r *Room) Run(ctx context.Context) {
	var tick <-chan time.Time
	if iv := r.cfg.Type.TickInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	var sweep <-chan time.Time
	if r.cfg.EmptyTimeout > 0 {
		t := time.NewTicker(max(r.cfg.EmptyTimeout/4, time.Millisecond))
		defer t.Stop()
		sweep = t.C
	}
	for !r.closing {
		select {
		case in := <-r.mailbox:
			if in.query != nil {
				in.query()
				close(in.done)
				continue
			}
			in.At = r.cfg.Clock()
			r.safeApply(*in)
		case <-tick:
			start := r.cfg.Clock()
			r.safeApply(input{Input: Input{Kind: InputTick, At: start}})
			if r.cfg.TickObserver != nil {
				r.cfg.TickObserver(r.cfg.Clock().Sub(start), r.cfg.Type.TickInterval())
			}
		case now := <-sweep:
			// A seat reserved (a match's players on their way) keeps an
			// empty room open until it lapses.
			if len(r.members) == 0 && !r.seatsReserved(r.cfg.Clock()) && now.Sub(r.empty) >= r.cfg.EmptyTimeout {
				r.safeApply(input{Input: Input{Kind: InputClose, At: r.cfg.Clock()}})
			}
		case <-ctx.Done():
			r.safeApply(input{Input: Input{Kind: InputClose, At: r.cfg.Clock()}})
		}
	}
	// Inputs that raced with the close are answered, not dropped silently:
	// done is closed first, so a post that lands after this drain sees it
	// and drains the mailbox itself.
	close(r.done)
	r.refuseQueued()
}

// Done is closed when the room has ended.
func (r *Room) Done() <-chan struct{} { return r.done }

// post hands an input to the room goroutine.
func (r *Room) post(ctx context.Context, in input) error {
	// Checked first: select picks at random among ready cases, and a send
	// to the mailbox of an ended room has room to succeed.
	select {
	case <-r.done:
		return r.errEnded()
	default:
	}
	select {
	case r.mailbox <- &in:
	case <-r.done:
		return r.errEnded()
	case <-ctx.Done():
		return ctx.Err()
	}
	// The room may have ended after its last look at the mailbox.
	select {
	case <-r.done:
		r.refuseQueued()
	default:
	}
	return nil
}

func (r *Room) errEnded() error {
	return tandem.Errorf(tandem.ENotFound, "room %s has ended", r.cfg.ID)
}

// Join asks the room to add a member and returns once the room has
// applied it, so the session's room count is exact for its next request.
// The answer (joined or an error) goes to m.Reply with cid.
func (r *Room) Join(ctx context.Context, m Member, cid uint64, metadata []byte) error {
	_, err := r.join1(ctx, m, cid, metadata, nil)
	return err
}

// JoinSeated is Join for a player holding the seat reservation seat (its
// key, as given to Reserve) in this room: the lock does not apply to it,
// and its reserved place makes room for it under the player limit.
func (r *Room) JoinSeated(ctx context.Context, m Member, cid uint64, metadata []byte, seat string) error {
	done := make(chan struct{})
	in := input{Input: Input{Kind: InputJoin, Player: *m.Player(), Cid: cid, Metadata: metadata, Seated: true, Seat: seat}, member: m, done: done}
	if err := r.post(ctx, in); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TryJoin is Join for join-or-create: when the room takes no one now (full,
// locked or ended) it reports open false and answers nothing, so the caller
// can try another room. The room's own refusals (JoinAttempt) are answered.
func (r *Room) TryJoin(ctx context.Context, m Member, cid uint64, metadata []byte) (open bool, err error) {
	var notOpen bool
	ended, err := r.join1(ctx, m, cid, metadata, &notOpen)
	return !notOpen && !ended, err
}

// join1 posts a join and waits until the room applied it; ended reports a
// room that ended before it could.
func (r *Room) join1(ctx context.Context, m Member, cid uint64, metadata []byte, notOpen *bool) (ended bool, err error) {
	done := make(chan struct{})
	in := input{Input: Input{Kind: InputJoin, Player: *m.Player(), Cid: cid, Metadata: metadata}, member: m, done: done, notOpen: notOpen}
	if err := r.post(ctx, in); err != nil {
		if notOpen != nil && tandem.ErrorCodeOf(err) == tandem.ENotFound {
			return true, nil // an ended room: a trying join looks elsewhere
		}
		return false, err
	}
	// Every queued input is applied or, once the room ended, refused by
	// refuseQueued: either closes done.
	select {
	case <-done:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// Submit hands a member's message to the room.
func (r *Room) Submit(ctx context.Context, m Member, msg Message) error {
	return r.post(ctx, input{Input: Input{Kind: InputMessage, Player: tandem.Player{ID: m.Player().ID}, Message: msg}, member: m})
}

// Disconnect tells the room a member's connection is lost. It returns once
// the room has applied it, so the room sends the member nothing more until
// its Rejoin.
func (r *Room) Disconnect(ctx context.Context, m Member) error {
	done := make(chan struct{})
	if err := r.post(ctx, input{Input: Input{Kind: InputDisconnect, Player: tandem.Player{ID: m.Player().ID}}, member: m, done: done}); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-r.done:
		return nil // the room ended: it sends nothing more either
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Rejoin tells the room a member resumed; the room replays its stream from
// pos or sends a gap with a snapshot.
func (r *Room) Rejoin(ctx context.Context, m Member, pos *protocol.StreamPos) error {
	return r.post(ctx, input{Input: Input{Kind: InputRejoin, Player: tandem.Player{ID: m.Player().ID}, Pos: pos}, member: m})
}

// Leave removes a member with a reason.
func (r *Room) Leave(ctx context.Context, m Member, reason protocol.LeaveReason) error {
	return r.post(ctx, input{Input: Input{Kind: InputLeave, Player: tandem.Player{ID: m.Player().ID}, Reason: reason}, member: m})
}

// Close ends the room: members leave with ROOM_CLOSED and Shutdown runs.
func (r *Room) Close(ctx context.Context) error {
	return r.post(ctx, input{Input: Input{Kind: InputClose}})
}

// Reserve holds a place in the room for a seat reservation (seat is its
// key) until until, or refuses: EJoinRejected when the room is locked,
// ERoomFull when its members and reservations fill it, ENotFound once it
// has ended. The place counts against every join but the seated one that
// uses it.
func (r *Room) Reserve(ctx context.Context, seat string, until time.Time) error {
	done := make(chan struct{})
	var res error
	if err := r.post(ctx, input{Input: Input{Kind: InputReserve, Seat: seat, Until: until}, done: done, result: &res}); err != nil {
		return err
	}
	select {
	case <-done:
		return res
	case <-ctx.Done():
		// It may yet be applied: give the place back after it.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = r.Unreserve(uctx, seat)
		return ctx.Err()
	}
}

// Unreserve gives up a place held by Reserve (the seat was not created,
// or its player went away). It does not wait for the room.
func (r *Room) Unreserve(ctx context.Context, seat string) error {
	return r.post(ctx, input{Input: Input{Kind: InputUnreserve, Seat: seat}})
}

// SetLocked locks (no joins) or unlocks the room.
func (r *Room) SetLocked(ctx context.Context, locked bool) error {
	k := InputUnlock
	if locked {
		k = InputLock
	}
	return r.post(ctx, input{Input: Input{Kind: k}})
}

// MemberView is one member as an inspection sees it.
type MemberView struct {
	PlayerID  string
	Connected bool // as the room sees it: false between a disconnect and the rejoin
}

// Inspection is a read of a room's state for an operator.
type Inspection struct {
	Members []MemberView // join order
	// Snapshot is the handler's Snapshot for the first member (nil
	// without members).
	Snapshot []byte
}

// Inspect reads the room's members and its first member's snapshot on the
// room goroutine, between two inputs. It is no input: the journal does not
// record it and the room's state does not change. ENotFound once the room
// has ended.
func (r *Room) Inspect(ctx context.Context) (Inspection, error) {
	var (
		out Inspection
		ran bool
	)
	done := make(chan struct{})
	err := r.post(ctx, input{done: done, query: func() { out, ran = r.inspect(), true }})
	if err != nil {
		return Inspection{}, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return Inspection{}, ctx.Err()
	}
	if !ran { // refused: the room ended first
		return Inspection{}, r.errEnded()
	}
	return out, nil
}

func (r *Room) inspect() Inspection {
	in := Inspection{Members: make([]MemberView, len(r.members))}
	for i, m := range r.members {
		in.Members[i] = MemberView{PlayerID: m.player.ID, Connected: m.connected}
	}
	if len(r.members) > 0 {
		in.Snapshot = r.inspectSnapshot(r.members[0].player)
	}
	return in
}

// inspectSnapshot runs the handler's Snapshot for an inspection. A panic
// loses the snapshot, not the room: an operator's look must not end a
// game.
func (r *Room) inspectSnapshot(p *tandem.Player) (b []byte) {
	r.inspecting = true
	defer func() {
		r.inspecting = false
		if v := recover(); v != nil {
			r.log.Error("room handler panicked in an inspection's snapshot", "panic", fmt.Sprint(v))
			b = nil
		}
	}()
	return r.handler.Snapshot(r, p)
}

// refuseQueued answers the inputs left in the mailbox of an ended room.
func (r *Room) refuseQueued() {
	for {
		select {
		case in := <-r.mailbox:
			r.refuseClosed(*in)
		default:
			return
		}
	}
}

func (r *Room) refuseClosed(in input) {
	switch {
	case in.Kind == InputJoin && in.notOpen != nil:
		*in.notOpen = true // a trying join looks elsewhere
	case in.Kind == InputJoin && in.member != nil:
		in.member.Reply(errorReply(in.Cid, tandem.Errorf(tandem.ENotFound, "room %s has ended", r.cfg.ID)))
	}
	if in.done != nil {
		close(in.done)
	}
}

// safeApply applies an input; a panic in game code closes this room
// instead of taking down the node with every other room.
func (r *Room) safeApply(in input) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		r.log.Error("room handler panicked; closing the room", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if in.Kind == InputJoin && in.member != nil && r.member(in.Player.ID) == nil {
			in.member.Reply(errorReply(in.Cid, tandem.Errorf(tandem.EInternal, "room %s failed", r.cfg.ID)))
		}
		r.abandon()
		if in.done != nil {
			close(in.done)
		}
	}()
	r.apply(in)
}

// abandon ends a room whose handler failed, without calling it again:
// every member gets its leave (with missed set, since the room's state
// cannot be trusted for a snapshot).
func (r *Room) abandon() {
	members := r.members
	r.members = nil
	for _, m := range members {
		if m.conn != nil {
			m.conn.LeftRoom(r.cfg.ID)
			m.conn.Reply(&protocol.Envelope{Body: &protocol.Envelope_Leave{Leave: &protocol.Leave{
				RoomId: r.cfg.ID, Reason: protocol.LeaveReason_LEAVE_REASON_ROOM_CLOSED, Missed: !m.connected,
			}}})
		}
	}
	r.closing = true
	r.publishInfo()
	if r.cfg.OnClose != nil {
		r.cfg.OnClose(r)
	}
}

// apply is the room's state machine: one input at a time, on the room
// goroutine (or in Replay).
func (r *Room) apply(in input) {
	r.now = in.At
	if r.cfg.Journal != nil {
		r.cfg.Journal(in.Input)
	}
	switch {
	case in.Kind == InputJoin:
		r.join(in)
	case in.member != nil && !r.from(in):
		// From another session of the same player (an ended one whose
		// input was still queued): not this member's.
	default:
		r.applyMember(in)
	}
	if r.ending {
		r.shutdown()
	}
	r.publishInfo()
	r.flushRoster()
	if in.done != nil {
		close(in.done)
	}
}

// from reports whether in comes from the session that is the member.
func (r *Room) from(in input) bool {
	m := r.member(in.Player.ID)
	return m == nil || m.conn == in.member
}

func (r *Room) applyMember(in input) {
	switch in.Kind {
	case InputLeave:
		r.leave(in.Player.ID, in.Reason)
	case InputDisconnect:
		r.disconnect(in.Player.ID)
	case InputRejoin:
		r.rejoin(in.Player.ID, in.Pos)
	case InputMessage:
		if m := r.member(in.Player.ID); m != nil {
			r.handler.Message(r, m.player, in.Message)
		}
	case InputTick:
		r.tick++
		r.handler.Tick(r)
	case InputClose:
		r.shutdown()
	case InputLock:
		r.setLocked(true)
	case InputUnlock:
		r.setLocked(false)
	case InputReserve:
		if err := r.reserve(in.Seat, in.Until); err != nil && in.result != nil {
			*in.result = err
		}
	case InputUnreserve:
		delete(r.reserved, in.Seat)
	}
}

func (r *Room) reserve(seat string, until time.Time) error {
	r.pruneReserved()
	switch max := r.cfg.Type.MaxPlayers; {
	case r.closing:
		return r.errEnded()
	case r.locked:
		return tandem.Errorf(tandem.EJoinRejected, "room %s is locked", r.cfg.ID)
	case max > 0 && len(r.members)+len(r.reserved) >= max:
		return tandem.Errorf(tandem.ERoomFull, "room %s is full", r.cfg.ID)
	}
	if r.reserved == nil {
		r.reserved = make(map[string]time.Time)
	}
	r.reserved[seat] = until
	return nil
}

// seatsReserved reports whether a reservation is still good at now.
func (r *Room) seatsReserved(now time.Time) bool {
	for _, until := range r.reserved {
		if now.Before(until) {
			return true
		}
	}
	return false
}

// pruneReserved drops the reservations that lapsed by the room clock.
func (r *Room) pruneReserved() {
	for k, until := range r.reserved {
		if !r.now.Before(until) {
			delete(r.reserved, k)
		}
	}
}

func (r *Room) member(playerID string) *member {
	for _, m := range r.members {
		if m.player.ID == playerID {
			return m
		}
	}
	return nil
}

// taken counts the places a join finds taken: the members, and the
// reservations other than the one a seated join uses (used up here).
func (r *Room) taken(in input) int {
	if len(r.reserved) == 0 {
		return len(r.members)
	}
	r.pruneReserved()
	if in.Seated {
		delete(r.reserved, in.Seat)
	}
	return len(r.members) + len(r.reserved)
}

func (r *Room) join(in input) {
	reply := func(err error) { in.member.Reply(errorReply(in.Cid, err)) }
	// A room that takes no one now: a trying join (join-or-create) is told
	// so, to look elsewhere, instead of the client getting the error.
	closed := func(err error) {
		if in.notOpen != nil {
			*in.notOpen = true
			return
		}
		reply(err)
	}
	switch {
	case r.closing:
		closed(tandem.Errorf(tandem.ENotFound, "room %s has ended", r.cfg.ID))
		return
	case r.member(in.Player.ID) != nil:
		reply(tandem.Errorf(tandem.EConflict, "already in room %s", r.cfg.ID))
		return
	case r.locked && !in.Seated:
		closed(tandem.Errorf(tandem.EJoinRejected, "room %s is locked", r.cfg.ID))
		return
	case r.cfg.Type.MaxPlayers > 0 && r.taken(in) >= r.cfg.Type.MaxPlayers:
		closed(tandem.Errorf(tandem.ERoomFull, "room %s is full", r.cfg.ID))
		return
	}
	p := &in.Player
	if err := r.handler.JoinAttempt(r, p, in.Metadata); err != nil {
		var te *tandem.Error
		if !errors.As(err, &te) {
			err = tandem.Errorf(tandem.EJoinRejected, "%s", err.Error())
		}
		reply(err)
		return
	}
	// The joined reply is built after the Join hook, so its snapshot
	// includes what the hook did; frames the hook sent to the joiner are
	// held back and follow the reply (as Colyseus does).
	m := &member{player: p, conn: in.member, epoch: 1, pending: true}
	if in.member != nil {
		var ok bool
		if m.connected, ok = in.member.JoinedRoom(r); !ok {
			// The session ended while the join waited in the mailbox: no
			// one would ever tell the room it left.
			return
		}
	}
	r.members = append(r.members, m)
	r.empty = time.Time{}
	r.event(p.ID, protocol.RoomEventKind_ROOM_EVENT_JOINED, 0)
	r.rosterChanged(RosterChange{Kind: RosterJoined, PlayerID: p.ID})
	m.joinSeq = r.seq
	r.handler.Join(r, p)
	if r.member(p.ID) != m {
		reply(tandem.Errorf(tandem.EJoinRejected, "removed from room %s while joining", r.cfg.ID))
		return
	}
	m.pending = false
	if in.member == nil {
		return
	}
	in.member.Reply(&protocol.Envelope{Cid: in.Cid, Body: &protocol.Envelope_Joined{Joined: &protocol.Joined{
		RoomId:   r.cfg.ID,
		RoomType: r.cfg.Type.Name,
		Epoch:    m.epoch,
		Seq:      m.joinSeq,
		State:    r.handler.Snapshot(r, p),
		Players:  r.playerIDs(),
	}}})
	if m.connected {
		r.buffer.After(m.joinSeq, func(_ uint64, f *frame) bool {
			if f.addressedTo(p.ID) {
				r.deliver(m, f)
			}
			return true
		})
	}
}

func (r *Room) leave(playerID string, reason protocol.LeaveReason) {
	i := slices.IndexFunc(r.members, func(m *member) bool { return m.player.ID == playerID })
	if i < 0 {
		return
	}
	m := r.members[i]
	leave := &protocol.Leave{RoomId: r.cfg.ID, Reason: reason}
	if !m.connected && m.conn != nil {
		// The room stream is not replayed after a leave: a member that is
		// away gets the final state instead of a silent gap.
		leave.State, leave.Missed = r.handler.Snapshot(r, m.player), true
	}
	r.members = slices.Delete(r.members, i, i+1)
	if len(r.members) == 0 {
		r.empty = r.now
	}
	if m.conn != nil {
		m.conn.LeftRoom(r.cfg.ID)
		m.conn.Reply(&protocol.Envelope{Body: &protocol.Envelope_Leave{Leave: leave}})
	}
	r.event(playerID, protocol.RoomEventKind_ROOM_EVENT_LEFT, reason)
	r.rosterChanged(RosterChange{Kind: RosterLeft, PlayerID: playerID, Reason: reason})
	r.handler.Leave(r, m.player, reason)
}

func (r *Room) disconnect(playerID string) {
	m := r.member(playerID)
	if m == nil || !m.connected {
		return
	}
	m.connected = false
	r.event(playerID, protocol.RoomEventKind_ROOM_EVENT_DISCONNECTED, 0)
	r.handler.Disconnect(r, m.player)
}

// rejoin replays the member's stream from its position, or sends a gap with
// a snapshot and a new epoch when the buffer no longer covers it.
func (r *Room) rejoin(playerID string, pos *protocol.StreamPos) {
	m := r.member(playerID)
	if m == nil {
		return
	}
	epoch, seq := m.epoch, m.joinSeq
	if pos != nil {
		epoch, seq = pos.Epoch, pos.Seq
	}
	if epoch != m.epoch || seq < m.joinSeq || !r.buffer.Covers(seq) || seq > r.seq {
		m.epoch = max(m.epoch, epoch) + 1
		if r.cfg.OnGap != nil {
			r.cfg.OnGap()
		}
		r.deliverOne(m, &protocol.Envelope{Room: r.cfg.ID, Seq: r.seq, Body: &protocol.Envelope_Gap{Gap: &protocol.Gap{
			RoomId: r.cfg.ID, FromSeq: seq, Seq: r.seq, Epoch: m.epoch, State: r.handler.Snapshot(r, m.player),
		}}})
	} else {
		r.buffer.After(seq, func(_ uint64, f *frame) bool {
			if f.addressedTo(playerID) {
				r.deliver(m, f)
			}
			return true
		})
	}
	if !m.connected {
		m.connected = true
		r.event(playerID, protocol.RoomEventKind_ROOM_EVENT_REJOINED, 0)
		r.handler.Rejoin(r, m.player)
	}
}

func (r *Room) shutdown() {
	if r.closing {
		return
	}
	for len(r.members) > 0 {
		r.leave(r.members[0].player.ID, protocol.LeaveReason_LEAVE_REASON_ROOM_CLOSED)
	}
	r.closing = true
	r.handler.Shutdown(r)
	r.publishInfo() // OnClose's readers see the room closed, not the last input's info
	r.flushRoster() // the members' leaves are reported before the close
	if r.cfg.OnClose != nil {
		r.cfg.OnClose(r)
	}
}

func (r *Room) event(playerID string, kind protocol.RoomEventKind, reason protocol.LeaveReason) {
	r.publish(nil, playerID, &protocol.Envelope{Body: &protocol.Envelope_RoomEvent{RoomEvent: &protocol.RoomEvent{
		RoomId: r.cfg.ID, PlayerId: playerID, Kind: kind, Reason: reason,
	}}})
}

// publish appends a frame to the room stream and delivers it to the
// connected members it is addressed to: encoded once per codec in use, the
// same bytes for every member of that codec.
func (r *Room) publish(to []string, except string, env *protocol.Envelope) {
	r.seq++
	env.Room, env.Seq = r.cfg.ID, r.seq
	f := &frame{to: to, except: except, env: env}
	for _, m := range r.members {
		if m.connected && !m.pending && f.addressedTo(m.player.ID) {
			r.deliver(m, f)
		}
	}
	size := 0
	for _, b := range f.bytes {
		size += len(b)
	}
	if size == 0 {
		size = 64 // nobody connected received it yet; count it anyway
	}
	r.buffer.Push(r.seq, size, f)
}

func (r *Room) deliver(m *member, f *frame) {
	c := m.conn.Codec()
	if f.bytes[c] == nil {
		b, err := r.cfg.Encoder(c, f.env)
		if err != nil {
			r.log.Error("encode room frame", "err", err)
			return
		}
		f.bytes[c] = b
	}
	m.conn.Deliver(f.bytes[c])
}

// deliverOne sends a frame meant for one member only and not buffered.
func (r *Room) deliverOne(m *member, env *protocol.Envelope) {
	b, err := r.cfg.Encoder(m.conn.Codec(), env)
	if err != nil {
		r.log.Error("encode room frame", "err", err)
		return
	}
	m.conn.Deliver(b)
}

func (r *Room) playerIDs() []string {
	ids := make([]string, len(r.members))
	for i, m := range r.members {
		ids[i] = m.player.ID
	}
	return ids
}

func errorReply(cid uint64, err error) *protocol.Envelope {
	code := tandem.ErrorCodeOf(err)
	return &protocol.Envelope{Cid: cid, Body: &protocol.Envelope_Error{Error: &protocol.Error{
		Code: uint32(code), Message: tandem.ErrorMessageOf(err), Temporary: code.Temporary(),
	}}}
}
