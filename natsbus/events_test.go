package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/observe"
)

// eventLog collects what a consumer was handed.
type eventLog struct {
	mu    sync.Mutex
	count map[string]int
	total int
}

func (l *eventLog) handle(_ context.Context, es []tandem.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count == nil {
		l.count = map[string]int{}
	}
	for _, e := range es {
		l.count[e.ID]++
		l.total++
	}
	return nil
}

func (l *eventLog) waitFor(t *testing.T, ids int) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.total < ids {
			return fmt.Errorf("%d events handed, want %d", l.total, ids)
		}
		return nil
	})
}

func (l *eventLog) checkEachOnce(t *testing.T, ids int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.count) != ids || l.total != ids {
		t.Errorf("%d distinct events in %d, want %d each once", len(l.count), l.total, ids)
	}
	for id, n := range l.count {
		if n != 1 {
			t.Errorf("event %s handed %d times", id, n)
		}
	}
}

func consume(t *testing.T, b *natsbus.Bus, durable string, handle func(context.Context, []tandem.Event) error) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.ConsumeEvents(ctx, durable, handle) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ConsumeEvents: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func publish(t *testing.T, b *natsbus.Bus, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		e := tandem.Event{ID: fmt.Sprint("e", i), Node: "n1", Kind: tandem.EventRoomJoined, At: time.Now(), RoomID: "r1"}
		if err := b.PublishEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 { // a duplicate of every tenth
			if err := b.PublishEvent(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestEventsAreConsumedOnceAcrossConsumerRestarts(t *testing.T) {
	b, _ := newBus(t)
	publish(t, b, 0, 1000)
	var l eventLog
	stop := consume(t, b, "web", l.handle)
	l.waitFor(t, 1000)
	stop()
	publish(t, b, 1000, 1500)
	consume(t, b, "web", l.handle)
	l.waitFor(t, 1500)
	l.checkEachOnce(t, 1500)
}

func TestFailedEventBatchIsRedeliveredInOrder(t *testing.T) {
	b, _ := newBus(t)
	publish(t, b, 0, 5)
	var mu sync.Mutex
	var got []string
	fail := 2
	consume(t, b, "web", func(_ context.Context, es []tandem.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			return errors.New("database down")
		}
		for _, e := range es {
			got = append(got, e.ID)
		}
		return nil
	})
	eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(got) != "[e0 e1 e2 e3 e4]" {
			return fmt.Errorf("handed %v", got)
		}
		return nil
	})
}

func TestEventBufferPublishesWithIDs(t *testing.T) {
	b, _ := newBus(t)
	m := observe.NewBus(prometheus.NewRegistry())
	buf := natsbus.NewEventBuffer(natsbus.EventBufferConfig{Stream: b, Node: "n1", Metrics: m})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { buf.Run(ctx); close(done) }()
	for range 10 {
		buf.Emit(tandem.Event{Kind: tandem.EventSessionOpened, Node: "ignored"})
	}
	var mu sync.Mutex
	var got []tandem.Event
	consume(t, b, "web", func(_ context.Context, es []tandem.Event) error {
		mu.Lock()
		got = append(got, es...)
		mu.Unlock()
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 10 {
			return fmt.Errorf("%d events", len(got))
		}
		return nil
	})
	ids := map[string]bool{}
	for _, e := range got {
		if e.Node != "n1" || e.At.IsZero() || e.ID == "" || ids[e.ID] {
			t.Errorf("event %+v: want node n1, a time and a unique id", e)
		}
		ids[e.ID] = true
	}
	cancel()
	<-done
	if n := counterValue(m.EventsPublished); n != 10 {
		t.Errorf("published counter %v, want 10", n)
	}
}

func TestEventBufferNeverBlocksAndCountsDrops(t *testing.T) {
	srv := startServer(t, "", "")
	b := connect(t, natsbus.Config{Server: srv})
	m := observe.NewBus(prometheus.NewRegistry())
	buf := natsbus.NewEventBuffer(natsbus.EventBufferConfig{
		Stream: b, Node: "n1", Size: 4, Window: 1, FlushTimeout: 500 * time.Millisecond, Metrics: m,
	})
	srv.Shutdown() // the publisher can publish nothing
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { buf.Run(ctx); close(done) }()
	emitted := make(chan struct{})
	go func() {
		for range 100 {
			buf.Emit(tandem.Event{Kind: tandem.EventRoomCreated})
		}
		close(emitted)
	}()
	select {
	case <-emitted:
	case <-time.After(10 * time.Second):
		t.Fatal("Emit blocked")
	}
	// At most the buffer and the window (one event) in the publisher's
	// hands wait.
	if n := counterValue(m.EventsDropped); n < 95 {
		t.Errorf("dropped counter %v, want at least 95", n)
	}
	cancel()
	<-done
	if n := counterValue(m.EventsDropped) + counterValue(m.EventsPublished); n != 100 {
		t.Errorf("dropped + published = %v after stop, want 100", n)
	}

	// A nil metrics set counts nothing and does not panic.
	nb := natsbus.NewEventBuffer(natsbus.EventBufferConfig{Stream: b, Node: "n1", Size: 1})
	nb.Emit(tandem.Event{})
	nb.Emit(tandem.Event{})
}

// TestEventBufferFlushesEverythingAtStop: the events of a node's last
// moments (thousands of sessions closed at the end of a drain) are all
// published when it stops cleanly, within the flush timeout.
func TestEventBufferFlushesEverythingAtStop(t *testing.T) {
	b, _ := newBus(t)
	m := observe.NewBus(prometheus.NewRegistry())
	const n = 5000
	buf := natsbus.NewEventBuffer(natsbus.EventBufferConfig{Stream: b, Node: "n1", Size: 8192, Metrics: m})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { buf.Run(ctx); close(done) }()
	for i := range n {
		buf.Emit(tandem.Event{Kind: tandem.EventSessionClosed, SessionID: fmt.Sprint("s", i)})
	}
	cancel()
	<-done
	if d, p := counterValue(m.EventsDropped), counterValue(m.EventsPublished); d != 0 || p != n {
		t.Errorf("dropped %v, published %v; want 0 and %d", d, p, n)
	}
	var mu sync.Mutex
	var got []tandem.Event
	consume(t, b, "web", func(_ context.Context, es []tandem.Event) error {
		mu.Lock()
		got = append(got, es...)
		mu.Unlock()
		return nil
	})
	eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < n {
			return fmt.Errorf("%d events in the stream, want %d", len(got), n)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	// Nothing failed, so the stream holds them in emit order, each once.
	for i, e := range got {
		if want := fmt.Sprint("s", i); e.SessionID != want {
			t.Fatalf("event %d is of session %s, want %s (%d events)", i, e.SessionID, want, len(got))
		}
	}
}

// TestEventBufferRepublishesAfterTheServerComesBack: events published while
// the server is away are published again when it is back, each once.
func TestEventBufferRepublishesAfterTheServerComesBack(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	b := connect(t, natsbus.Config{URL: srv.ClientURL()})
	m := observe.NewBus(prometheus.NewRegistry())
	buf := natsbus.NewEventBuffer(natsbus.EventBufferConfig{Stream: b, Node: "n1", Window: 16, Metrics: m})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { buf.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := range 50 {
		buf.Emit(tandem.Event{Kind: tandem.EventRoomCreated, RoomID: fmt.Sprint("a", i)})
	}
	srv.Shutdown()
	for i := range 50 {
		buf.Emit(tandem.Event{Kind: tandem.EventRoomCreated, RoomID: fmt.Sprint("b", i)})
	}
	startServer(t, dir, u.Host)
	eventually(t, 30*time.Second, func() error {
		if p := counterValue(m.EventsPublished); p < 100 {
			return fmt.Errorf("%v published", p)
		}
		return nil
	})
	var l eventLog
	consume(t, b, "web", l.handle)
	l.waitFor(t, 100)
	l.checkEachOnce(t, 100)
	if d := counterValue(m.EventsDropped); d != 0 {
		t.Errorf("dropped %v, want 0", d)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestEventsOfAConsumerThatDiedMidBatchGoToAnother: a web replica killed
// while it stores a batch never acknowledges it; the batch goes to the
// replica that takes over within the ack wait (seconds, not minutes).
func TestEventsOfAConsumerThatDiedMidBatchGoToAnother(t *testing.T) {
	srv := startServer(t, "", "")
	dying := connect(t, natsbus.Config{Server: srv, Name: "web-1"})
	publish(t, dying, 0, 5)
	got, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	consume(t, dying, "web", func(ctx context.Context, _ []tandem.Event) error {
		once.Do(func() { close(got) })
		select { // stuck in its database until the test ends
		case <-release:
		case <-ctx.Done():
		}
		return errors.New("never stored")
	})
	<-got
	// The replica dies: its connection goes, and no ack or progress report
	// will ever come from it.
	if err := dying.Close(); err != nil {
		t.Fatal(err)
	}
	defer close(release)

	var l eventLog
	consume(t, connect(t, natsbus.Config{Server: srv, Name: "web-2"}), "web", l.handle)
	l.waitFor(t, 5)
	l.checkEachOnce(t, 5)
}

// TestEventBufferCountsEventsEmittedAfterItStopped: warnings logged late in
// a node's stop still reach Emit (observe.TeeWarnings); once Run returned
// nothing publishes them, so each is counted as dropped, including those
// emitted while Run was stopping.
func TestEventBufferCountsEventsEmittedAfterItStopped(t *testing.T) {
	b, _ := newBus(t)
	m := observe.NewBus(prometheus.NewRegistry())
	buf := natsbus.NewEventBuffer(natsbus.EventBufferConfig{Stream: b, Node: "n1", Metrics: m})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { buf.Run(ctx); close(done) }()

	const emitters, each = 4, 500
	var wg sync.WaitGroup
	for range emitters {
		wg.Go(func() {
			for range each {
				buf.Emit(tandem.Event{Kind: tandem.EventRoomCreated})
			}
		})
	}
	cancel() // stops while they emit
	<-done
	wg.Wait()
	for range 10 {
		buf.Emit(tandem.Event{Kind: tandem.EventRoomCreated})
	}
	const total = emitters*each + 10
	if n := counterValue(m.EventsDropped) + counterValue(m.EventsPublished); n != total {
		t.Errorf("dropped %v + published %v = %v, want %d: events emitted around the stop were lost",
			counterValue(m.EventsDropped), counterValue(m.EventsPublished), n, total)
	}
	if d := counterValue(m.EventsDropped); d < 10 {
		t.Errorf("dropped %v, want at least the 10 emitted after Run returned", d)
	}
}

// slowStream publishes at once every event but the ones of room "stuck",
// whose publish lasts until its context ends.
type slowStream struct{ tandem.EventStream }

func (slowStream) PublishEvent(ctx context.Context, e tandem.Event) error {
	if e.RoomID == "stuck" {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// TestEventBufferCountsAnAckThatCameAsPublishedAtStop: when the flush
// timeout passes while the oldest event still awaits its ack, the newer
// ones whose acks did arrive were stored, and count as published, not
// dropped.
func TestEventBufferCountsAnAckThatCameAsPublishedAtStop(t *testing.T) {
	m := observe.NewBus(prometheus.NewRegistry())
	buf := natsbus.NewEventBuffer(natsbus.EventBufferConfig{
		Stream: slowStream{}, Node: "n1", FlushTimeout: 200 * time.Millisecond, Metrics: m,
	})
	buf.Emit(tandem.Event{Kind: tandem.EventRoomCreated, RoomID: "stuck"})
	buf.Emit(tandem.Event{Kind: tandem.EventRoomCreated, RoomID: "r2"})
	buf.Emit(tandem.Event{Kind: tandem.EventRoomCreated, RoomID: "r3"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // straight to the flush, which the stuck event outlasts
	buf.Run(ctx)
	if d, p := counterValue(m.EventsDropped), counterValue(m.EventsPublished); d != 1 || p != 2 {
		t.Errorf("dropped %v, published %v; want 1 (the stuck event) and 2", d, p)
	}
}
