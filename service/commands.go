package service

import (
	"context"
	"unicode/utf8"

	"github.com/tandemhq/tandem"
)

// Commands to realtime nodes: SendCommand writes them to the outbox in the
// transaction of their audit record; the leased relay (jobs.go) delivers
// them.

// CommandRequest is an operator's command. Node may be left empty: the
// command goes where its player or room is (a notice with neither goes to
// every live node).
type CommandRequest struct {
	Kind     tandem.CommandKind
	Node     string
	PlayerID string
	RoomID   string
	Text     string
}

const (
	maxNoticeLen   = 500
	maxCommandList = 1000
)

func (in CommandRequest) check() error {
	var fields []tandem.FieldError
	need := func(field, value string) {
		if value == "" {
			fields = append(fields, tandem.FieldError{Field: field, Message: "is required for " + string(in.Kind)})
		}
	}
	switch in.Kind {
	case tandem.CommandKick:
		need("player_id", in.PlayerID)
	case tandem.CommandCloseRoom, tandem.CommandLockRoom, tandem.CommandUnlockRoom:
		need("room_id", in.RoomID)
	case tandem.CommandNotice:
		if n := utf8.RuneCountInString(in.Text); n == 0 || n > maxNoticeLen || !validText(in.Text) {
			fields = append(fields, tandem.FieldError{Field: "text", Message: "write 1 to 500 characters"})
		}
	case tandem.CommandDrain:
		need("node", in.Node)
	default:
		fields = append(fields, tandem.FieldError{Field: "kind", Message: "is not a known command"})
	}
	for _, f := range []struct{ name, value string }{{"node", in.Node}, {"player_id", in.PlayerID}, {"room_id", in.RoomID}} {
		if len(f.value) > 200 || !validText(f.value) {
			fields = append(fields, tandem.FieldError{Field: f.name, Message: "is too long or not text"})
		}
	}
	return tandem.Invalid(fields)
}

// SendCommand stores a command for its node (several for a notice to
// everyone) and wakes the relay (rooms:manage). The records come back
// pending; Commands shows how their delivery went.
func (s *Service) SendCommand(ctx context.Context, a *Actor, in CommandRequest) ([]CommandRecord, error) {
	o := op{action: "node.command", perm: tandem.PermRoomsManage, targetType: "node", targetID: in.Node}
	if err := s.authorize(a, o); err != nil {
		s.auditDenied(ctx, s.newRecord(a, o), err)
		return nil, err
	}
	if err := in.check(); err != nil {
		s.auditFailure(ctx, s.newRecord(a, o), err)
		return nil, err
	}
	if s.cfg.Cluster == nil {
		err := tandem.Errorf(tandem.EUnavailable, "this server runs without a cluster")
		s.auditFailure(ctx, s.newRecord(a, o), err)
		return nil, err
	}
	nodes, err := s.commandNodes(ctx, in)
	if err != nil {
		s.auditFailure(ctx, s.newRecord(a, o), err)
		return nil, err
	}
	if len(nodes) == 1 {
		o.targetID = nodes[0]
	} else {
		o.targetID = "*"
	}
	now := s.now()
	by := ""
	if a != nil {
		by = a.Name
	}
	out := make([]CommandRecord, 0, len(nodes))
	for _, node := range nodes {
		out = append(out, CommandRecord{
			Command: tandem.Command{ID: newPlayerID(now), Node: node, Kind: in.Kind, PlayerID: in.PlayerID,
				RoomID: in.RoomID, Text: in.Text, CreatedAt: now},
			State: tandem.CommandPending, CreatedBy: by,
		})
	}
	err = s.update(ctx, a, o, func(tx tandem.Tx, rec *tandem.AuditRecord) error {
		ids := make([]string, 0, len(out))
		for i := range out {
			if err := tx.CreateCommand(ctx, &out[i]); err != nil {
				return err
			}
			ids = append(ids, out[i].ID)
		}
		detail := map[string]any{"kind": in.Kind, "commands": ids, "nodes": nodes}
		if in.RoomID != "" {
			detail["room"] = in.RoomID
		}
		if in.PlayerID != "" {
			detail["player"] = in.PlayerID
		}
		if in.Text != "" {
			// Operator text sent to players, not personal data.
			detail["text"] = in.Text
		}
		rec.After = auditJSON(detail)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.wakeJob(ctx, jobRelay)
	return out, nil
}

// commandNodes resolves the nodes a command goes to.
func (s *Service) commandNodes(ctx context.Context, in CommandRequest) ([]string, error) {
	if in.Node != "" {
		// A typo would sit pending until CommandGiveUp.
		if _, err := s.cfg.Cluster.Node(ctx, in.Node); tandem.ErrorCodeOf(err) == tandem.ENotFound {
			return nil, tandem.Errorf(tandem.ENotFound, "node %q is not live", in.Node)
		} else if err != nil {
			return nil, busError(err)
		}
		return []string{in.Node}, nil
	}
	switch {
	case in.PlayerID != "" && (in.Kind == tandem.CommandKick || in.Kind == tandem.CommandNotice):
		p, err := s.livePresence(ctx, in.PlayerID)
		if tandem.ErrorCodeOf(err) == tandem.ENotFound {
			return nil, tandem.Errorf(tandem.ENotFound, "the player is not connected")
		} else if err != nil {
			return nil, busError(err)
		}
		return []string{p.Node}, nil
	case in.RoomID != "":
		r, err := s.cfg.Cluster.Room(ctx, in.RoomID)
		if tandem.ErrorCodeOf(err) == tandem.ENotFound {
			return nil, tandem.Errorf(tandem.ENotFound, "no such room")
		} else if err != nil {
			return nil, busError(err)
		}
		return []string{r.Node}, nil
	}
	// A notice to everyone: one command per live node.
	live, err := s.cfg.Cluster.Nodes(ctx)
	if err != nil {
		return nil, busError(err)
	}
	if len(live) == 0 {
		return nil, tandem.Errorf(tandem.ENotFound, "no realtime node is live")
	}
	nodes := make([]string, 0, len(live))
	for _, n := range live {
		nodes = append(nodes, n.ID)
	}
	return nodes, nil
}

// Commands lists the latest commands, newest first (rooms:read).
func (s *Service) Commands(ctx context.Context, a *Actor, limit int) ([]CommandRecord, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, maxCommandList)
	var out []CommandRecord
	err := s.view(ctx, a, op{action: "node.command.list", perm: tandem.PermRoomsRead}, func(tx tandem.Tx) error {
		cs, err := tx.Commands(ctx, limit)
		if err != nil {
			return err
		}
		out = make([]CommandRecord, 0, len(cs))
		for _, c := range cs {
			out = append(out, *c)
		}
		return nil
	})
	return out, err
}
