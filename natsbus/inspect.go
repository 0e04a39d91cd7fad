package natsbus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/tandemhq/tandem"
)

// inspectWorkers bounds the inspections a node answers at once: the
// console's questions must not crowd out its rooms.
const inspectWorkers = 8

// The kinds of inspection request.
const (
	inspectRoom   = "room"
	inspectPlayer = "player"
)

// inspectRequest is a question to a node's tandem.inspect.<node> subject.
type inspectRequest struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// inspectReply is the answer: one of Room and Player, or an error code.
type inspectReply struct {
	Room    *tandem.RoomInspection `json:"room,omitempty"`
	Player  *tandem.LivePlayer     `json:"player,omitempty"`
	Code    tandem.ErrorCode       `json:"code,omitempty"`
	Message string                 `json:"message,omitempty"`
}

// InspectRoom asks node about roomID. Errors of the node's handler come
// back as *tandem.Error with the same code; EUnavailable when no process
// serves node.
func (b *Bus) InspectRoom(ctx context.Context, node, roomID string) (tandem.RoomInspection, error) {
	rep, err := b.inspect(ctx, node, inspectRequest{Kind: inspectRoom, ID: roomID})
	if err != nil {
		return tandem.RoomInspection{}, err
	}
	if rep.Room == nil {
		return tandem.RoomInspection{}, fmt.Errorf("room inspection reply from node %q without a room", node)
	}
	return *rep.Room, nil
}

// InspectPlayer asks node about playerID's session, like InspectRoom.
func (b *Bus) InspectPlayer(ctx context.Context, node, playerID string) (tandem.LivePlayer, error) {
	rep, err := b.inspect(ctx, node, inspectRequest{Kind: inspectPlayer, ID: playerID})
	if err != nil {
		return tandem.LivePlayer{}, err
	}
	if rep.Player == nil {
		return tandem.LivePlayer{}, fmt.Errorf("player inspection reply from node %q without a player", node)
	}
	return *rep.Player, nil
}

func (b *Bus) inspect(ctx context.Context, node string, r inspectRequest) (inspectReply, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return inspectReply{}, err
	}
	reply, err := b.request(ctx, inspectSubjects+key(node), data, node)
	if err != nil {
		return inspectReply{}, err
	}
	var rep inspectReply
	if err := json.Unmarshal(reply, &rep); err != nil {
		return inspectReply{}, fmt.Errorf("malformed inspection reply from node %q: %w", node, err)
	}
	if rep.Code != 0 {
		return inspectReply{}, tandem.Errorf(rep.Code, "%s", rep.Message)
	}
	return rep, nil
}

// ServeInspections answers node's inspections with h, a few at a time,
// until ctx ends (then it returns nil).
func (b *Bus) ServeInspections(ctx context.Context, node string, h tandem.InspectHandler) error {
	return b.serve(ctx, inspectSubjects+key(node), inspectWorkers, func(m *nats.Msg) {
		var r inspectRequest
		if err := json.Unmarshal(m.Data, &r); err != nil {
			b.respond(m, inspectReply{Code: tandem.EInvalid, Message: "malformed inspection request"})
			return
		}
		var (
			rep inspectReply
			err error
		)
		switch r.Kind {
		case inspectRoom:
			var ri tandem.RoomInspection
			if ri, err = h.InspectRoom(ctx, r.ID); err == nil {
				rep.Room = &ri
			}
		case inspectPlayer:
			var lp tandem.LivePlayer
			if lp, err = h.InspectPlayer(ctx, r.ID); err == nil {
				rep.Player = &lp
			}
		default:
			err = tandem.Errorf(tandem.EInvalid, "unknown inspection kind %q", r.Kind)
		}
		if err != nil {
			if tandem.ErrorCodeOf(err) == tandem.EInternal {
				b.log.Error("inspection failed", "kind", r.Kind, "id", r.ID, "err", err)
			}
			rep = inspectReply{Code: tandem.ErrorCodeOf(err), Message: tandem.ErrorMessageOf(err)}
		}
		b.respond(m, rep)
	})
}
