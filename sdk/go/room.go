package client

import (
	"context"
	"errors"

	"github.com/tandemhq/tandem/protocol"
)

// Room is a room the session joined. Its stream's events arrive on
// Client.Events. It is safe for concurrent use.
type Room struct {
	c    *Client
	sess *session // the session that joined it
	id   string
	typ  string
	left chan struct{} // closed when the session is no longer in the room

	// guarded by c.mu
	state []byte
	err   error // why the room is no longer joined
}

// ID returns the room id.
func (r *Room) ID() string { return r.id }

// Type returns the room type.
func (r *Room) Type() string { return r.typ }

// State returns the room's last full state for this player: from joined,
// the last Snapshot or the last Gap. Deltas are not applied.
func (r *Room) State() []byte {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	return r.state
}

// gone marks the room as no longer joined. The caller holds c.mu.
func (r *Room) gone(err error) {
	if r.err == nil {
		r.err = err
		close(r.left)
	}
}

// SendOption changes how a room message is delivered.
type SendOption func(*protocol.RoomMessage)

// To delivers the message to the listed players only (DELIVERY_LIST).
func To(players ...string) SendOption {
	return func(m *protocol.RoomMessage) {
		m.Delivery = protocol.Delivery_DELIVERY_LIST
		m.To = players
	}
}

// Others delivers the message to every member but the sender
// (DELIVERY_OTHERS).
func Others() SendOption {
	return func(m *protocol.RoomMessage) { m.Delivery = protocol.Delivery_DELIVERY_OTHERS }
}

// HandlerOnly gives the message to the room's handler only (DELIVERY_ROOM).
func HandlerOnly() SendOption {
	return func(m *protocol.RoomMessage) { m.Delivery = protocol.Delivery_DELIVERY_ROOM }
}

// Send sends a reliable room_message (to every member by default). It
// returns once the frame is queued: written, or buffered while the client
// reconnects, and resent until the server acknowledges it. A refusal by the
// server (rate_limited, not_in_room…) arrives later as an ErrorEvent. It
// fails at once with ErrRoomLeft, an ErrSessionLost error, ErrClosed, or
// ErrFrameTooLarge.
func (r *Room) Send(ctx context.Context, topic string, data []byte, opts ...SendOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := r.c.send(roomMessageFrame(r.id, topic, data, opts), nil, r)
	return err
}

// Leave leaves the room and waits until its stream ends with the leave
// frame (the Left event). Leaving a room already left returns nil.
func (r *Room) Leave(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := newPending()
	_, err := r.c.send(leaveFrame(r.id), p, r)
	if errors.Is(err, ErrRoomLeft) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.c.forget(p)
	select {
	case <-r.left:
		if errors.Is(r.err, ErrRoomLeft) {
			return nil
		}
		return r.err
	case rep := <-p.ch:
		return rep.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
