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
	Stream tandem.EventStream
	Node   string // the node's id: every event's Node, and its ids' prefix
	Size   int    // events held while the bus is slow or away (default 4096)
	// Window is how many published events may await the server's ack at
	// once (default 256): a node stopping with thousands of events queued
	// publishes them in a few round trips, not one each.
	Window int
	// FlushTimeout bounds the last publishing when Run's context ends
	// (default 10s): what is still queued or unacknowledged then is
	// counted as dropped. The node's stop waits for it, so it belongs in
	// the shutdown budget (a termination grace period).
	FlushTimeout time.Duration
	Metrics      *observe.Bus
	Logger       *slog.Logger
}

// The defaults of EventBufferConfig, and how long one published event
// waits for its ack before it is published again.
const (
	DefaultEventWindow       = 256
	DefaultEventFlushTimeout = 10 * time.Second
	eventPublishAckWait      = 5 * time.Second
)

// EventBuffer is the bounded asynchronous buffer a realtime node publishes
// events through: Emit never blocks (a room tick calls it), Run publishes.
//
// Events are published in emit order, up to Window of them awaiting their
// acks at once. One whose publish failed (a lost connection, a timeout) is
// published again, with backoff, before any later event is sent; the ones
// already in flight behind it may be stored first, so the stream keeps
// emit order except around a failure. A second copy never lands: every
// event has a message id the stream deduplicates.
type EventBuffer struct {
	cfg    EventBufferConfig
	log    *slog.Logger
	ch     chan tandem.Event
	prefix string // node id + boot random: ids unique across restarts
	seq    atomic.Uint64
	// closed is set once Run stopped taking events out of ch: what Emit
	// queues after that would never be published, so it is counted as
	// dropped instead (warnings logged late in a stop reach Emit through
	// observe.TeeWarnings).
	closed atomic.Bool
	// js publishes asynchronously on the bus's connection; nil for a
	// Stream other than a *Bus, whose PublishEvent calls are made from
	// up to Window goroutines instead.
	js jetstream.JetStream
}

// NewEventBuffer returns an empty buffer; Run publishes what it holds.
func NewEventBuffer(c EventBufferConfig) *EventBuffer {
	if c.Size <= 0 {
		c.Size = 4096
	}
	if c.Window <= 0 {
		c.Window = DefaultEventWindow
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = DefaultEventFlushTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	boot := make([]byte, 6)
	_, _ = rand.Read(boot)
	b := &EventBuffer{
		cfg:    c,
		log:    c.Logger,
		ch:     make(chan tandem.Event, c.Size),
		prefix: c.Node + "-" + hex.EncodeToString(boot) + "-",
	}
	if bus, ok := c.Stream.(*Bus); ok {
		// A JetStream context of its own: its ack timeout frees the window
		// of a publish whose ack was lost, and its pending acks are only
		// the buffer's.
		js, err := jetstream.New(bus.nc,
			jetstream.WithPublishAsyncMaxPending(c.Window),
			jetstream.WithPublishAsyncTimeout(eventPublishAckWait))
		if err == nil {
			b.js = js
		}
	}
	return b
}

// Emit queues e without blocking. It sets e.Node, e.At (when zero) and e.ID
// (when empty). When the buffer is full, or Run has returned, e is dropped
// and counted.
func (b *EventBuffer) Emit(e tandem.Event) {
	e.Node = b.cfg.Node
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.ID == "" {
		e.ID = b.prefix + strconv.FormatUint(b.seq.Add(1), 10)
	}
	// No log on a drop: warnings become events (observe.TeeWarnings), and
	// a full or stopped buffer would feed itself.
	if b.closed.Load() {
		b.dropped()
		return
	}
	select {
	case b.ch <- e:
	default:
		b.dropped()
		return
	}
	// Run may have closed the buffer and emptied ch between the check
	// above and the send: then this event (or another sent as late, which
	// its own Emit no longer finds) is taken back and counted. Run sets
	// closed before emptying ch, so a send its emptying missed sees it.
	if b.closed.Load() {
		select {
		case <-b.ch:
			b.dropped()
		default:
		}
	}
}

// Run publishes queued events until ctx ends, retrying failed publishes
// with backoff. Then it goes on publishing what is queued, for at most
// FlushTimeout, and counts what is left as dropped.
func (b *EventBuffer) Run(ctx context.Context) {
	// The fallback publishers' context: they end with Run.
	pubCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &eventPump{b: b, ctx: pubCtx}
	p.run(ctx, false)
	flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.FlushTimeout)
	p.run(flushCtx, true)
	cancelFlush()
	cancel()
	p.wg.Wait()
	b.closed.Store(true)
	p.abandon()
	if b.js != nil {
		// The publisher's reply subscription and status listener would
		// otherwise stay until the bus's connection closes.
		b.js.CleanupPublisher()
	}
}

// inflight is one published event awaiting its ack: exactly one of ok and
// err delivers.
type inflight struct {
	e   tandem.Event
	ok  <-chan *jetstream.PubAck
	err <-chan error
}

// eventPump is Run's state: the events awaiting acks in publish order,
// and the failed ones to publish again before anything newer.
type eventPump struct {
	b        *EventBuffer
	ctx      context.Context // of the fallback publishers
	wg       sync.WaitGroup  // the fallback publishers
	inflight []inflight
	retry    []tandem.Event
	failures int       // consecutive failures: the backoff
	resumeAt time.Time // nothing is sent before (a backoff)
	failing  bool      // logged as failing
}

// run publishes until ctx ends or, when stopping, until nothing is left.
func (p *eventPump) run(ctx context.Context, stopping bool) {
	backoff := time.NewTimer(time.Hour)
	backoff.Stop()
	for {
		if stopping && len(p.inflight) == 0 && len(p.retry) == 0 && len(p.b.ch) == 0 {
			return
		}
		var in <-chan tandem.Event
		var wake <-chan time.Time
		// A send that fails sets a backoff, which stops this loop.
		for len(p.retry) > 0 && len(p.inflight) < p.b.cfg.Window && !p.backingOff() {
			e := p.retry[0]
			p.retry = p.retry[1:]
			if err := p.send(e); err != nil && p.failed(err) {
				p.retry = append([]tandem.Event{e}, p.retry...) // still first
			}
		}
		if wait := time.Until(p.resumeAt); wait > 0 {
			backoff.Reset(wait)
			wake = backoff.C
		} else if len(p.retry) == 0 && len(p.inflight) < p.b.cfg.Window {
			in = p.b.ch
		}
		var okC <-chan *jetstream.PubAck
		var errC <-chan error
		if len(p.inflight) > 0 {
			okC, errC = p.inflight[0].ok, p.inflight[0].err
		}
		select {
		case <-ctx.Done():
			return
		case e := <-in:
			if err := p.send(e); err != nil && p.failed(err) {
				p.retry = append(p.retry, e)
			}
		case <-okC:
			p.acked()
		case err := <-errC:
			e := p.inflight[0].e
			p.inflight = p.inflight[1:]
			if p.failed(err) {
				p.retry = append(p.retry, e)
			}
		case <-wake:
		}
		backoff.Stop()
	}
}

func (p *eventPump) backingOff() bool { return time.Now().Before(p.resumeAt) }

// send publishes e without waiting for its ack; an error means it was not
// sent.
func (p *eventPump) send(e tandem.Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		p.b.dropped()
		return nil
	}
	if p.b.js == nil {
		ok, errC := make(chan *jetstream.PubAck, 1), make(chan error, 1)
		p.wg.Go(func() {
			ctx, cancel := context.WithTimeout(p.ctx, eventPublishAckWait)
			defer cancel()
			if err := p.b.cfg.Stream.PublishEvent(ctx, e); err != nil {
				errC <- err
				return
			}
			ok <- &jetstream.PubAck{}
		})
		p.inflight = append(p.inflight, inflight{e: e, ok: ok, err: errC})
		return nil
	}
	f, err := p.b.js.PublishAsync(eventSubjects+key(e.Node), data, jetstream.WithMsgID(e.ID))
	if err != nil {
		return err
	}
	p.inflight = append(p.inflight, inflight{e: e, ok: f.Ok(), err: f.Err()})
	return nil
}

func (p *eventPump) acked() {
	p.inflight = p.inflight[1:]
	p.published()
	p.failures = 0
	if p.failing {
		p.b.log.Info("publishing events again")
		p.failing = false
	}
}

// failed reports whether an event whose publish failed with err should be
// published again (the caller queues it), and if so starts a backoff;
// otherwise it counts the event as dropped. Events still in flight behind
// it arrive or fail on their own: a connection lost fails them all, and
// they are queued behind it in order.
func (p *eventPump) failed(err error) bool {
	if !retryable(err) {
		// Info, not Warn: a warning becomes an event, and one the server
		// refuses the same way would feed itself.
		p.b.log.Info("an event was refused by the server; it is dropped", "err", err)
		p.b.dropped()
		return false
	}
	if !p.failing {
		p.b.log.Info("publishing events failed, retrying", "err", err)
		p.failing = true
	}
	if !p.backingOff() {
		p.resumeAt = time.Now().Add(backoff(p.failures))
		p.failures++
	}
	return true
}

// abandon counts what was not published within the flush timeout as
// dropped: the node is stopping. An ack that arrived but was not read yet
// counts as published; an event still awaiting its ack may have been
// stored anyway.
func (p *eventPump) abandon() {
	for _, f := range p.inflight {
		select {
		case <-f.ok:
			p.published()
		default:
			p.b.dropped()
		}
	}
	for range p.retry {
		p.b.dropped()
	}
	p.inflight, p.retry = nil, nil
	for {
		select {
		case <-p.b.ch:
			p.b.dropped()
		default:
			return
		}
	}
}

func (p *eventPump) published() {
	if p.b.cfg.Metrics != nil {
		p.b.cfg.Metrics.EventsPublished.Inc()
	}
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
		return apiErr.Code >= 500
	}
	return true
}
