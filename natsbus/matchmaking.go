package natsbus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tandemhq/tandem"
)

// matchWorkers bounds the match room requests a node answers at once:
// each creates a room and reserves its seats, quick work that must not
// wait behind a slow one.
const matchWorkers = 4

// PutQueue writes q's configuration.
func (b *Bus) PutQueue(ctx context.Context, q tandem.MatchQueue) error {
	if q.Name == "" {
		return tandem.Errorf(tandem.EInvalid, "queue without a name")
	}
	return b.putJSON(ctx, b.queues, q.Name, q)
}

// DeleteQueue removes a queue's configuration (its tickets stay until
// they end or expire).
func (b *Bus) DeleteQueue(ctx context.Context, name string) error {
	return b.remove(ctx, b.queues, name)
}

// Queues lists the queues by name.
func (b *Bus) Queues(ctx context.Context) ([]tandem.MatchQueue, error) {
	return listJSON(ctx, b, b.queues, jetstream.AllKeys, decodeJSON[tandem.MatchQueue],
		func(a, c tandem.MatchQueue) int { return strings.Compare(a.Name, c.Name) })
}

// WatchQueues calls fn with every queue, then with every change; deletes
// come with only Name set.
func (b *Bus) WatchQueues(ctx context.Context, fn func(q tandem.MatchQueue, deleted bool)) (stop func(), err error) {
	return b.watch(ctx, b.queues, false, func(e jetstream.KeyValueEntry) {
		if deletion(e) {
			fn(tandem.MatchQueue{Name: idOf(e.Key())}, true)
			return
		}
		var q tandem.MatchQueue
		if err := json.Unmarshal(e.Value(), &q); err != nil {
			b.log.Warn("malformed queue entry", "key", e.Key(), "err", err)
			return
		}
		fn(q, false)
	})
}

// ticketKey is a ticket's key: queue and player, two tokens (key never
// makes a dot), so that "<queue>.*" selects one queue's tickets.
func ticketKey(queue, playerID string) string {
	return key(queue) + "." + key(playerID)
}

// ticketFilter selects queue's tickets, or every ticket for "".
func ticketFilter(queue string) string {
	if queue == "" {
		return jetstream.AllKeys
	}
	return key(queue) + ".*"
}

// ticketOf decodes a ticket entry and gives it the entry's revision.
func ticketOf(e jetstream.KeyValueEntry) (tandem.MatchTicket, error) {
	var t tandem.MatchTicket
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return tandem.MatchTicket{}, fmt.Errorf("malformed ticket entry %s: %w", e.Key(), err)
	}
	t.Revision = e.Revision()
	return t, nil
}

// CreateTicket stores t as the player's ticket in t.Queue and returns it
// with its revision. A live ticket of the player there makes it
// EConflict; an ended one is replaced by compare-and-swap, so of two
// players' racing creates (or a create racing a matcher's update) one
// wins and the other is EConflict.
func (b *Bus) CreateTicket(ctx context.Context, t tandem.MatchTicket) (tandem.MatchTicket, error) {
	if t.Queue == "" || t.PlayerID == "" {
		return tandem.MatchTicket{}, tandem.Errorf(tandem.EInvalid, "ticket without a queue or player")
	}
	data, err := json.Marshal(t)
	if err != nil {
		return tandem.MatchTicket{}, err
	}
	k := ticketKey(t.Queue, t.PlayerID)
	rev, err := b.tickets.Create(ctx, k, data)
	if err == nil {
		t.Revision = rev
		return t, nil
	}
	if !casLost(err) {
		return tandem.MatchTicket{}, err
	}
	raced := tandem.Errorf(tandem.EConflict, "player %q's ticket in queue %q changed meanwhile", t.PlayerID, t.Queue)
	e, err := b.tickets.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return tandem.MatchTicket{}, raced // deleted since the create
	}
	if err != nil {
		return tandem.MatchTicket{}, err
	}
	if old, err := ticketOf(e); err != nil {
		b.log.Warn("malformed ticket replaced", "key", k, "err", err)
	} else if !old.State.Ended() {
		return tandem.MatchTicket{}, tandem.Errorf(tandem.EConflict, "player %q is already in queue %q", t.PlayerID, t.Queue)
	}
	rev, err = b.tickets.Update(ctx, k, data, e.Revision())
	if casLost(err) {
		return tandem.MatchTicket{}, raced
	}
	if err != nil {
		return tandem.MatchTicket{}, err
	}
	t.Revision = rev
	return t, nil
}

// Ticket returns the player's ticket in queue with its revision;
// ENotFound when there is none.
func (b *Bus) Ticket(ctx context.Context, queue, playerID string) (tandem.MatchTicket, error) {
	e, err := b.tickets.Get(ctx, ticketKey(queue, playerID))
	if err != nil {
		return tandem.MatchTicket{}, notFound(err, "player %q has no ticket in queue %q", playerID, queue)
	}
	return ticketOf(e)
}

// UpdateTicket stores t over the entry if its revision is still
// t.Revision and returns t with the new one: EConflict when the entry
// changed since, ENotFound when it is gone.
func (b *Bus) UpdateTicket(ctx context.Context, t tandem.MatchTicket) (tandem.MatchTicket, error) {
	k := ticketKey(t.Queue, t.PlayerID)
	if t.Revision == 0 {
		// Revision 0 would mean "only if absent" to the server: it would
		// create the ticket, not update it.
		return tandem.MatchTicket{}, b.ticketChanged(ctx, k, t.Queue, t.PlayerID)
	}
	data, err := json.Marshal(t)
	if err != nil {
		return tandem.MatchTicket{}, err
	}
	rev, err := b.tickets.Update(ctx, k, data, t.Revision)
	if casLost(err) {
		return tandem.MatchTicket{}, b.ticketChanged(ctx, k, t.Queue, t.PlayerID)
	}
	if err != nil {
		return tandem.MatchTicket{}, err
	}
	t.Revision = rev
	return t, nil
}

// DeleteTicket removes the player's ticket in queue if its revision is
// still revision: EConflict when it changed since, ENotFound when it is
// gone. Like remove, it leaves a marker that expires.
func (b *Bus) DeleteTicket(ctx context.Context, queue, playerID string, revision uint64) error {
	k := ticketKey(queue, playerID)
	if revision == 0 {
		return b.ticketChanged(ctx, k, queue, playerID)
	}
	err := b.tickets.Purge(ctx, k, jetstream.LastRevision(revision), jetstream.PurgeTTL(markerTTL))
	if casLost(err) {
		return b.ticketChanged(ctx, k, queue, playerID)
	}
	return err
}

// ticketChanged is the error of a compare-and-swap on k that failed:
// ENotFound when the ticket is gone, EConflict when it is another
// revision.
func (b *Bus) ticketChanged(ctx context.Context, k, queue, playerID string) error {
	_, err := b.tickets.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return tandem.Errorf(tandem.ENotFound, "player %q has no ticket in queue %q", playerID, queue)
	}
	if err != nil {
		return err
	}
	return tandem.Errorf(tandem.EConflict, "player %q's ticket in queue %q changed meanwhile", playerID, queue)
}

// Tickets lists queue's tickets ("" for every queue) by queue and player,
// each with its revision.
func (b *Bus) Tickets(ctx context.Context, queue string) ([]tandem.MatchTicket, error) {
	return listJSON(ctx, b, b.tickets, ticketFilter(queue), ticketOf, func(a, c tandem.MatchTicket) int {
		return cmp.Or(strings.Compare(a.Queue, c.Queue), strings.Compare(a.PlayerID, c.PlayerID))
	})
}

// WatchTickets calls fn with every ticket of queue ("" for every queue),
// then with every change, each with its revision; deletes (removed, or
// expired after an hour without a write) come with only Queue and
// PlayerID set.
func (b *Bus) WatchTickets(ctx context.Context, queue string, fn func(t tandem.MatchTicket, deleted bool)) (stop func(), err error) {
	return b.watchKeys(ctx, b.tickets, ticketFilter(queue), false, func(e jetstream.KeyValueEntry) {
		if deletion(e) {
			q, p, _ := strings.Cut(e.Key(), ".")
			fn(tandem.MatchTicket{Queue: idOf(q), PlayerID: idOf(p)}, true)
			return
		}
		t, err := ticketOf(e)
		if err != nil {
			b.log.Warn("malformed ticket entry", "err", err)
			return
		}
		fn(t, false)
	})
}

// lease is a matcher lease's entry. The bucket's MaxAge is the lease's
// life: every write (a take or a renewal) is a new message, so a lease
// lives MatchLeaseTTL after its last write.
type lease struct {
	Holder string `json:"holder"`
}

// HoldLease takes the lease name for holder, or renews it when holder has
// it, and reports whether holder has it now. Every write is a
// compare-and-swap, so of holders racing for a free lease exactly one
// gets it.
func (b *Bus) HoldLease(ctx context.Context, name, holder string) (bool, error) {
	if name == "" || holder == "" {
		return false, tandem.Errorf(tandem.EInvalid, "lease without a name or holder")
	}
	data, err := json.Marshal(lease{Holder: holder})
	if err != nil {
		return false, err
	}
	k := key(name)
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		e, err := b.leases.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			_, err := b.leases.Create(ctx, k, data)
			if err == nil {
				return true, nil
			}
			if !casLost(err) {
				return false, err
			}
			continue // taken meanwhile: by whom?
		}
		if err != nil {
			return false, err
		}
		var l lease
		if err := json.Unmarshal(e.Value(), &l); err != nil {
			// Nobody renews it: it expires.
			b.log.Warn("malformed lease entry", "lease", name, "err", err)
			return false, nil
		}
		if l.Holder != holder {
			return false, nil
		}
		_, err = b.leases.Update(ctx, k, data, e.Revision())
		if err == nil {
			return true, nil
		}
		if !casLost(err) {
			return false, err
		}
		// It expired since the read (and may have been taken): look again.
	}
}

// ReleaseLease gives the lease name up if holder has it, so that another
// holder can take it at once.
func (b *Bus) ReleaseLease(ctx context.Context, name, holder string) error {
	k := key(name)
	for {
		e, err := b.leases.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var l lease
		if err := json.Unmarshal(e.Value(), &l); err != nil || l.Holder != holder {
			return nil
		}
		err = b.leases.Purge(ctx, k, jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(markerTTL))
		if err == nil || !casLost(err) {
			return err
		}
		// Changed since the read: renewed by holder, or expired and taken.
	}
}

// wireMatchRoom is a match room as sent: its seats with their tokens,
// which tandem.Seat keeps out of JSON.
type wireMatchRoom struct {
	RoomID string     `json:"room_id"`
	Seats  []wireSeat `json:"seats"`
}

// matchRoomReply is the answer to a match room request: the room, or an
// error.
type matchRoomReply struct {
	Room    *wireMatchRoom   `json:"room,omitempty"`
	Code    tandem.ErrorCode `json:"code,omitempty"`
	Message string           `json:"message,omitempty"`
}

// CreateMatchRoom asks node to create (or, backfilling, to use) r's room
// and to reserve a seat per player. Errors of the node's create come back
// as *tandem.Error with the same code; EUnavailable when no process
// serves node.
func (b *Bus) CreateMatchRoom(ctx context.Context, node string, r tandem.MatchRoomRequest) (tandem.MatchRoom, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return tandem.MatchRoom{}, err
	}
	reply, err := b.request(ctx, matchSubjects+key(node), data, node)
	if err != nil {
		return tandem.MatchRoom{}, err
	}
	var rep matchRoomReply
	if err := json.Unmarshal(reply, &rep); err != nil {
		return tandem.MatchRoom{}, fmt.Errorf("malformed match room reply from node %q: %w", node, err)
	}
	if rep.Code != 0 {
		return tandem.MatchRoom{}, tandem.Errorf(rep.Code, "%s", rep.Message)
	}
	if rep.Room == nil {
		return tandem.MatchRoom{}, fmt.Errorf("match room reply from node %q without a room", node)
	}
	room := tandem.MatchRoom{RoomID: rep.Room.RoomID, Seats: make([]tandem.Seat, len(rep.Room.Seats))}
	for i, s := range rep.Room.Seats {
		room.Seats[i] = s.Seat
		room.Seats[i].Token = s.Token
	}
	return room, nil
}

// ServeMatchRooms answers node's match room requests with create until
// ctx ends (then it returns nil). Requests are served concurrently.
func (b *Bus) ServeMatchRooms(ctx context.Context, node string, create func(context.Context, tandem.MatchRoomRequest) (tandem.MatchRoom, error)) error {
	return b.serve(ctx, matchSubjects+key(node), matchWorkers, func(m *nats.Msg) {
		var r tandem.MatchRoomRequest
		if err := json.Unmarshal(m.Data, &r); err != nil {
			b.respond(m, matchRoomReply{Code: tandem.EInvalid, Message: "malformed match room request"})
			return
		}
		room, err := create(ctx, r)
		if err != nil {
			if tandem.ErrorCodeOf(err) == tandem.EInternal {
				b.log.Error("match room failed", "match", r.MatchID, "queue", r.Queue, "err", err)
			}
			b.respond(m, matchRoomReply{Code: tandem.ErrorCodeOf(err), Message: tandem.ErrorMessageOf(err)})
			return
		}
		wire := &wireMatchRoom{RoomID: room.RoomID, Seats: make([]wireSeat, len(room.Seats))}
		for i, s := range room.Seats {
			wire.Seats[i] = wireSeat{Seat: s, Token: s.Token}
		}
		b.respond(m, matchRoomReply{Room: wire})
	})
}
