// Package sdktest owns what tests that drive the Go SDK (sdk/go) share: a
// log of a client's events, read from the moment it is made until the
// client stops.
package sdktest

import (
	"slices"
	"sync"
	"testing"

	client "github.com/tandemhq/tandem/sdk/go"
)

// EventLog reads a client's events into a list until the client stops.
type EventLog struct {
	mu     sync.Mutex
	events []client.Event
	done   chan struct{}
}

// LogEvents starts reading c's events. Call it before the client does
// anything that produces events; the reader ends when c closes, which the
// test's cleanup does.
func LogEvents(t testing.TB, c *client.Client) *EventLog {
	l := &EventLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ev := range c.Events() {
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		<-l.done
	})
	return l
}

// All returns a copy of the events so far.
func (l *EventLog) All() []client.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// EventsOf returns the events of type E so far.
func EventsOf[E client.Event](l *EventLog) []E {
	var out []E
	for _, ev := range l.All() {
		if e, ok := ev.(E); ok {
			out = append(out, e)
		}
	}
	return out
}

// Messages returns the data of the room messages with topic, in order.
func (l *EventLog) Messages(topic string) []string {
	var out []string
	for _, m := range EventsOf[*client.RoomMessage](l) {
		if m.Topic == topic {
			out = append(out, string(m.Data))
		}
	}
	return out
}

// RoomEvents returns the membership events about player, in order.
func (l *EventLog) RoomEvents(player string) []*client.RoomEvent {
	var out []*client.RoomEvent
	for _, e := range EventsOf[*client.RoomEvent](l) {
		if e.PlayerID == player {
			out = append(out, e)
		}
	}
	return out
}
