package natsbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/observe"
)

const (
	eventBatch     = 256
	eventFetchWait = time.Second
	// eventAckWait is how soon events fetched by a consumer that died
	// before acknowledging them (a web replica killed mid-batch) go to
	// another; a slow handler keeps its batch with progress reports, so a
	// replica that takes the lease over meanwhile does not get it too.
	eventAckWait = 5 * time.Second
)

// PublishEvent stores e in the event stream; the stream drops a second
// copy of an id within its duplicate window (2 minutes).
func (b *Bus) PublishEvent(ctx context.Context, e tandem.Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = b.js.Publish(ctx, eventSubjects+key(e.Node), data, jetstream.WithMsgID(e.ID))
	return err
}

// ConsumeEvents hands the stream's events to handle in batches, in order,
// under the durable consumer name, until ctx ends (then it returns nil).
// A batch is acknowledged when handle returns nil; otherwise it is handed
// again after a backoff. It rides out lost connections and server
// restarts.
func (b *Bus) ConsumeEvents(ctx context.Context, durable string, handle func(context.Context, []tandem.Event) error) error {
	var cons jetstream.Consumer
	failures := 0
	for ctx.Err() == nil {
		if failures > 0 {
			if sleep(ctx, backoff(failures-1)) != nil {
				break
			}
		}
		if cons == nil {
			c, err := b.events.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
				Durable:       durable,
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       eventAckWait,
				DeliverPolicy: jetstream.DeliverAllPolicy,
				MaxAckPending: eventBatch,
			})
			if err != nil {
				if ctx.Err() == nil {
					b.log.Info("event consumer not ready", "durable", durable, "err", err)
				}
				failures++
				continue
			}
			cons = c
		}
		ok, err := b.consumeBatch(ctx, cons, handle)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Info("fetching events failed", "durable", durable, "err", err)
			}
			if !errors.Is(err, errHandle) {
				cons = nil // look it up again: the server may have restarted
			}
			failures++
			continue
		}
		if ok {
			failures = 0
		}
	}
	return nil
}

var errHandle = errors.New("the event handler failed")

// consumeBatch fetches one batch and hands it to handle. ok is false when
// there was nothing to fetch.
func (b *Bus) consumeBatch(ctx context.Context, cons jetstream.Consumer, handle func(context.Context, []tandem.Event) error) (ok bool, err error) {
	// What is waiting, at once; when nothing is, the next event as soon
	// as it comes (a full-batch fetch would hold a lone event for the
	// whole fetch wait), with whatever came along with it.
	msgs, events, err := b.fetchEvents(cons.FetchNoWait(eventBatch))
	if err == nil && len(msgs) == 0 {
		msgs, events, err = b.fetchEvents(cons.Fetch(1, jetstream.FetchMaxWait(eventFetchWait)))
		if err == nil && len(msgs) > 0 {
			more, moreEvents, _ := b.fetchEvents(cons.FetchNoWait(eventBatch - 1))
			msgs, events = append(msgs, more...), append(events, moreEvents...)
		}
	}
	if err != nil {
		return false, err
	}
	if len(msgs) == 0 {
		return false, nil
	}
	if err := handleReportingProgress(ctx, msgs, events, handle); err != nil {
		if ctx.Err() == nil {
			b.log.Warn("event handler failed, the batch will be redelivered", "events", len(events), "err", err)
		}
		// The caller backs off before the next fetch, which gets these
		// first: the server delivers redeliveries before newer events.
		for _, m := range msgs {
			_ = m.Nak()
		}
		return false, errHandle
	}
	for _, m := range msgs[:len(msgs)-1] {
		_ = m.Ack()
	}
	// Waiting for the last ack means every ack of the batch (sent before
	// it on this connection) has been applied before the next fetch or a
	// restart of the consumer.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := msgs[len(msgs)-1].DoubleAck(actx); err != nil {
		b.log.Info("acknowledging events failed; they may be delivered again", "err", err)
	}
	return true, nil
}

// fetchEvents reads one fetch's messages and decodes them. A malformed
// event is acknowledged and skipped: redelivering it would not help.
func (b *Bus) fetchEvents(batch jetstream.MessageBatch, err error) ([]jetstream.Msg, []tandem.Event, error) {
	if err != nil {
		return nil, nil, err
	}
	var msgs []jetstream.Msg
	var events []tandem.Event
	for m := range batch.Messages() {
		var e tandem.Event
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			b.log.Warn("malformed event skipped", "subject", m.Subject(), "err", err)
			_ = m.Ack()
			continue
		}
		msgs = append(msgs, m)
		events = append(events, e)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && len(msgs) == 0 {
		return nil, nil, err
	}
	return msgs, events, nil
}

// handleReportingProgress runs handle, telling the server the batch is
// still being worked on while it runs longer than a fraction of the ack
// wait, so a slow database does not get the batch delivered twice.
func handleReportingProgress(ctx context.Context, msgs []jetstream.Msg, events []tandem.Event, handle func(context.Context, []tandem.Event) error) error {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(eventAckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	})
	err := handle(ctx, events)
	close(done)
	wg.Wait()
	return err
}

// EventBufferConfig configures an EventBuffer.
type EventBufferConfig struct {
	Stream  tandem.EventStream
	Node    string // the node's id: every event's Node, and its ids' prefix
	Size    int    // events held while the bus is slow or away (default 4096)
	Metrics *observe.Bus
	Logger  *slog.Logger
}

// EventBuffer is the bounded asynchronous buffer a realtime node publishes
// events through: Emit never blocks (a room tick calls it), Run publishes.
type EventBuffer struct {
	cfg    EventBufferConfig
	log    *slog.Logger
	ch     chan tandem.Event
	prefix string // node id + boot random: ids unique across restarts
	seq    atomic.Uint64
}

// NewEventBuffer returns an empty buffer; Run publishes what it holds.
func NewEventBuffer(c EventBufferConfig) *EventBuffer {
	if c.Size <= 0 {
		c.Size = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	boot := make([]byte, 6)
	_, _ = rand.Read(boot)
	return &EventBuffer{
		cfg:    c,
		log:    c.Logger,
		ch:     make(chan tandem.Event, c.Size),
		prefix: c.Node + "-" + hex.EncodeToString(boot) + "-",
	}
}

// Emit queues e without blocking. It sets e.Node, e.At (when zero) and e.ID
// (when empty). When the buffer is full, e is dropped and counted.
func (b *EventBuffer) Emit(e tandem.Event) {
	e.Node = b.cfg.Node
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.ID == "" {
		e.ID = b.prefix + strconv.FormatUint(b.seq.Add(1), 10)
	}
	select {
	case b.ch <- e:
	default:
		// No log here: warnings become events (observe.TeeWarnings), and
		// a full buffer would feed itself.
		if b.cfg.Metrics != nil {
			b.cfg.Metrics.EventsDropped.Inc()
		}
	}
}

// Run publishes queued events in order until ctx ends, retrying a failed
// publish with backoff. Then it makes one last attempt, bounded by a few
// seconds, to publish what is left.
func (b *EventBuffer) Run(ctx context.Context) {
	failing := false
	for {
		select {
		case <-ctx.Done():
			b.flush()
			return
		case e := <-b.ch:
			for n := 0; ; n++ {
				err := b.publish(ctx, e)
				if err == nil {
					if failing {
						b.log.Info("publishing events again")
						failing = false
					}
					break
				}
				if ctx.Err() != nil {
					b.flushWith(e)
					return
				}
				if !failing {
					b.log.Info("publishing events failed, retrying", "err", err)
					failing = true
				}
				if !retryable(err) {
					b.dropped()
					break
				}
				if sleep(ctx, backoff(n)) != nil {
					b.flushWith(e)
					return
				}
			}
		}
	}
}

// flushWith makes the last attempt, starting with e (already dequeued).
func (b *EventBuffer) flushWith(e tandem.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if b.publish(ctx, e) != nil {
		b.dropped()
		b.dropRest()
		return
	}
	b.flushCtx(ctx)
}

func (b *EventBuffer) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b.flushCtx(ctx)
}

func (b *EventBuffer) flushCtx(ctx context.Context) {
	for {
		select {
		case e := <-b.ch:
			if b.publish(ctx, e) != nil {
				b.dropped()
				b.dropRest()
				return
			}
		default:
			return
		}
	}
}

// dropRest counts what is still queued as dropped (the node is stopping).
func (b *EventBuffer) dropRest() {
	for {
		select {
		case <-b.ch:
			b.dropped()
		default:
			return
		}
	}
}

func (b *EventBuffer) publish(ctx context.Context, e tandem.Event) error {
	if err := b.cfg.Stream.PublishEvent(ctx, e); err != nil {
		return err
	}
	if b.cfg.Metrics != nil {
		b.cfg.Metrics.EventsPublished.Inc()
	}
	return nil
}

func (b *EventBuffer) dropped() {
	if b.cfg.Metrics != nil {
		b.cfg.Metrics.EventsDropped.Inc()
	}
}

// retryable reports whether publishing again may succeed: not when the
// server refused the event itself (too large, say).
func retryable(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamNotFound, jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount:
			return true
		}
		return apiErr.Code >= 500 || apiErr.Code == 503
	}
	return true
}
