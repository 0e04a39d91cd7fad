// Package clustertest owns what tests of the web side share to run
// against the cluster bus: an embedded NATS server with JetStream in the
// test's temporary directory, bus connections closed at the test's end, and
// a stand-in realtime node that answers the console's inspections.
package clustertest

import (
	"context"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
)

// StartNATS starts an embedded NATS server without a listener, its store
// in a temporary directory, shut down at the test's end.
func StartNATS(t testing.TB) *natsbus.Embedded {
	t.Helper()
	emb, err := natsbus.StartEmbedded(natsbus.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	return emb
}

// Connect connects a bus client to emb with c (its Server set to emb),
// closed at the test's end.
func Connect(t testing.TB, emb *natsbus.Embedded, c natsbus.Config) *natsbus.Bus {
	t.Helper()
	c.Server = emb
	bus, err := natsbus.Connect(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	return bus
}

// Inspector answers a node's inspections from fixed data.
type Inspector struct {
	Rooms   map[string]tandem.RoomInspection
	Players map[string]tandem.LivePlayer
}

func (f Inspector) InspectRoom(_ context.Context, id string) (tandem.RoomInspection, error) {
	if r, ok := f.Rooms[id]; ok {
		return r, nil
	}
	return tandem.RoomInspection{}, tandem.Errorf(tandem.ENotFound, "no such room")
}

func (f Inspector) InspectPlayer(_ context.Context, id string) (tandem.LivePlayer, error) {
	if p, ok := f.Players[id]; ok {
		return p, nil
	}
	return tandem.LivePlayer{}, tandem.Errorf(tandem.ENotFound, "no such session")
}

// ServeInspections makes node answer inspections with h until the test
// ends, as a realtime node would, and returns once it answers.
func ServeInspections(t testing.TB, bus tandem.Inspector, node string, h tandem.InspectHandler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = bus.ServeInspections(ctx, node, h)
	}()
	t.Cleanup(func() { cancel(); <-done })
	// Serving starts in the goroutine: wait until the node answers at all.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := bus.InspectPlayer(ctx, node, "nobody")
		if err == nil || tandem.ErrorCodeOf(err) == tandem.ENotFound {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered inspections: %v", node, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}
