package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tandemhq/tandem"
)

// SendCommand delivers c to c.Node and waits up to RequestTimeout for its
// result. An error means not delivered: retry with the same id.
func (b *Bus) SendCommand(ctx context.Context, c tandem.Command) (tandem.CommandResult, error) {
	if c.ID == "" {
		return tandem.CommandResult{}, tandem.Errorf(tandem.EInvalid, "command without an id")
	}
	data, err := json.Marshal(c)
	if err != nil {
		return tandem.CommandResult{}, err
	}
	reply, err := b.request(ctx, cmdSubjects+key(c.Node), data, c.Node)
	if err != nil {
		return tandem.CommandResult{}, err
	}
	var res tandem.CommandResult
	if err := json.Unmarshal(reply, &res); err != nil {
		return tandem.CommandResult{}, fmt.Errorf("malformed command result from node %q: %w", c.Node, err)
	}
	return res, nil
}

// ServeCommands answers node's commands with handle, one at a time in
// arrival order, until ctx ends (then it returns nil). A command id
// answered in the last 24 h (by any process serving node, before or after
// a restart) gets its stored result; handle never sees it again.
func (b *Bus) ServeCommands(ctx context.Context, node string, handle func(context.Context, tandem.Command) tandem.CommandResult) error {
	return b.serve(ctx, cmdSubjects+key(node), 1, func(m *nats.Msg) {
		b.serveCommand(ctx, node, m, handle)
	})
}

func (b *Bus) serveCommand(ctx context.Context, node string, m *nats.Msg, handle func(context.Context, tandem.Command) tandem.CommandResult) {
	var c tandem.Command
	if err := json.Unmarshal(m.Data, &c); err != nil || c.ID == "" {
		b.respond(m, tandem.CommandResult{ID: c.ID, Node: node, Error: "malformed command"})
		return
	}
	k := key(c.ID)
	if e, err := b.cmdDone.Get(ctx, k); err == nil {
		b.respondRaw(m, e.Value())
		return
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		// Without the memory a command could act twice: leave it
		// unanswered, the sender retries.
		b.log.Warn("command memory unavailable", "command", c.ID, "err", err)
		return
	}
	res := handle(ctx, c)
	res.ID = c.ID
	if res.Node == "" {
		res.Node = node
	}
	data, err := json.Marshal(res)
	if err != nil {
		b.log.Error("command result not encodable", "command", c.ID, "err", err)
		return
	}
	if _, err := b.cmdDone.Create(ctx, k, data); err != nil {
		if e, gerr := b.cmdDone.Get(ctx, k); casLost(err) && gerr == nil {
			data = e.Value() // another server of this node answered first
		} else {
			b.log.Warn("command result not remembered", "command", c.ID, "err", err)
		}
	}
	b.respondRaw(m, data)
}

// seatReply is the answer to a seat request: the seat, or an error.
type seatReply struct {
	Seat    *wireSeat        `json:"seat,omitempty"`
	Code    tandem.ErrorCode `json:"code,omitempty"`
	Message string           `json:"message,omitempty"`
}

// RequestSeat asks node to reserve a seat in r.RoomID. Errors of the
// node's reserve come back as *tandem.Error with the same code.
func (b *Bus) RequestSeat(ctx context.Context, node string, r tandem.SeatRequest) (tandem.Seat, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return tandem.Seat{}, err
	}
	reply, err := b.request(ctx, seatSubjects+key(node), data, node)
	if err != nil {
		return tandem.Seat{}, err
	}
	var rep seatReply
	if err := json.Unmarshal(reply, &rep); err != nil {
		return tandem.Seat{}, fmt.Errorf("malformed seat reply from node %q: %w", node, err)
	}
	if rep.Code != 0 {
		return tandem.Seat{}, tandem.Errorf(rep.Code, "%s", rep.Message)
	}
	if rep.Seat == nil {
		return tandem.Seat{}, fmt.Errorf("seat reply from node %q without a seat", node)
	}
	s := rep.Seat.Seat
	s.Token = rep.Seat.Token
	return s, nil
}

// ServeSeats answers node's seat requests with reserve until ctx ends
// (then it returns nil). Requests are served concurrently.
func (b *Bus) ServeSeats(ctx context.Context, node string, reserve func(context.Context, tandem.SeatRequest) (tandem.Seat, error)) error {
	return b.serve(ctx, seatSubjects+key(node), 16, func(m *nats.Msg) {
		var r tandem.SeatRequest
		if err := json.Unmarshal(m.Data, &r); err != nil {
			b.respond(m, seatReply{Code: tandem.EInvalid, Message: "malformed seat request"})
			return
		}
		s, err := reserve(ctx, r)
		if err != nil {
			if tandem.ErrorCodeOf(err) == tandem.EInternal {
				b.log.Error("seat reservation failed", "room", r.RoomID, "player", r.PlayerID, "err", err)
			}
			b.respond(m, seatReply{Code: tandem.ErrorCodeOf(err), Message: tandem.ErrorMessageOf(err)})
			return
		}
		b.respond(m, seatReply{Seat: &wireSeat{Seat: s, Token: s.Token}})
	})
}

// request sends a request to node's subject and waits up to
// RequestTimeout.
func (b *Bus) request(ctx context.Context, subject string, data []byte, node string) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	m, err := b.nc.RequestWithContext(rctx, subject, data)
	switch {
	case err == nil:
		return m.Data, nil
	case errors.Is(err, nats.ErrNoResponders):
		return nil, tandem.Errorf(tandem.EUnavailable, "node %s is not connected", node)
	case errors.Is(ctx.Err(), context.Canceled):
		return nil, ctx.Err() // the caller gave up
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		// The caller's deadline or ours: either way the node was too slow.
		return nil, tandem.Errorf(tandem.ETimeout, "node %s did not answer within %s", node, b.cfg.RequestTimeout)
	default:
		return nil, tandem.Errorf(tandem.EUnavailable, "request to node %s: %v", node, err)
	}
}

// serve subscribes to subject in the queue group (two servers of one node
// get one copy of each request) and runs handle for each request on at
// most workers goroutines (1: in arrival order), until ctx ends.
func (b *Bus) serve(ctx context.Context, subject string, workers int, handle func(*nats.Msg)) error {
	ch := make(chan *nats.Msg, 256)
	sub, err := b.nc.ChanQueueSubscribe(subject, queueGroup, ch)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Requests must not be lost to a subscription not yet known to the
	// server when this returns to the first caller's retry.
	fctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	err = b.nc.FlushWithContext(fctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		b.log.Warn("flush after subscribing", "subject", subject, "err", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-ch:
					handle(m)
				}
			}
		})
	}
	<-ctx.Done()
	return nil
}

func (b *Bus) respond(m *nats.Msg, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		b.log.Error("reply not encodable", "subject", m.Subject, "err", err)
		return
	}
	b.respondRaw(m, data)
}

func (b *Bus) respondRaw(m *nats.Msg, data []byte) {
	if err := m.Respond(data); err != nil {
		b.log.Info("reply not sent", "subject", m.Subject, "err", err)
	}
}
