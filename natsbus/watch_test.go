package natsbus_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
)

func TestWatchRoomsGetsEntriesThenChanges(t *testing.T) {
	b, _ := newBus(t)
	ctx := t.Context()
	if err := b.PutRoom(ctx, tandem.RoomEntry{ID: "r1", Type: "chat", Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	stop, err := b.WatchRooms(ctx, func(r tandem.RoomEntry, deleted bool) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s %s %v", r.ID, r.Node, deleted))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	mu.Lock()
	initial := slices.Clone(seen)
	mu.Unlock()
	if !slices.Equal(initial, []string{"r1 n1 false"}) {
		t.Errorf("entries before WatchRooms returned: %v", initial)
	}
	if err := b.PutRoom(ctx, tandem.RoomEntry{ID: "r2", Type: "chat", Node: "n2"}); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveRoom(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	want := []string{"r1 n1 false", "r2 n2 false", "r1  true"}
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(seen, want) {
			return fmt.Errorf("seen %q, want %q", seen, want)
		}
		return nil
	})
}

func TestWatchNodesSeesASilentNodeExpire(t *testing.T) {
	srv := startServer(t, "", "")
	b := connect(t, natsbus.Config{Server: srv, NodeTTL: time.Second})
	ctx := t.Context()
	var (
		mu   sync.Mutex
		seen []string
	)
	stop, err := b.WatchNodes(ctx, func(n tandem.NodeInfo, deleted bool) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s %s %v", n.ID, n.URL, deleted))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.PutNode(ctx, tandem.NodeInfo{ID: "n1", URL: "ws://n1/ws", Heartbeat: time.Now()}); err != nil {
		t.Fatal(err)
	}
	want := []string{"n1 ws://n1/ws false", "n1  true"}
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(seen, want) {
			return fmt.Errorf("seen %q, want %q", seen, want)
		}
		return nil
	})
}
