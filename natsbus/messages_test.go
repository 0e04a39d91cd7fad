package natsbus_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/natsbus"
)

// serveCommands runs ServeCommands until the returned stop is called.
func serveCommands(t *testing.T, b *natsbus.Bus, node string, handle func(context.Context, tandem.Command) tandem.CommandResult) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.ServeCommands(ctx, node, handle) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ServeCommands: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// sendUntilServed retries SendCommand while the server's subscription is
// not yet in place.
func sendUntilServed(t *testing.T, b *natsbus.Bus, c tandem.Command) tandem.CommandResult {
	t.Helper()
	var res tandem.CommandResult
	eventually(t, 10*time.Second, func() error {
		var err error
		res, err = b.SendCommand(t.Context(), c)
		return err
	})
	return res
}

func TestCommandIsHandledOnceEvenWhenSentTwiceAndAfterARestart(t *testing.T) {
	srv := startServer(t, "", "")
	web := connect(t, natsbus.Config{Server: srv, Name: "web"})
	node := connect(t, natsbus.Config{Server: srv, Name: "node 1"})
	var handled atomic.Int32
	handle := func(_ context.Context, c tandem.Command) tandem.CommandResult {
		n := handled.Add(1)
		return tandem.CommandResult{OK: c.Kind == tandem.CommandKick, Error: fmt.Sprint("call ", n)}
	}
	stop := serveCommands(t, node, "node 1", handle)
	c := tandem.Command{ID: "cmd-1", Node: "node 1", Kind: tandem.CommandKick, PlayerID: "alice", CreatedAt: time.Now()}
	want := tandem.CommandResult{ID: "cmd-1", Node: "node 1", OK: true, Error: "call 1"}
	if diff := cmp.Diff(want, sendUntilServed(t, web, c)); diff != "" {
		t.Errorf("first result (-want +got):\n%s", diff)
	}
	res, err := web.SendCommand(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("second result (-want +got):\n%s", diff)
	}

	stop()
	node2 := connect(t, natsbus.Config{Server: srv, Name: "node 1 again"})
	serveCommands(t, node2, "node 1", handle)
	if diff := cmp.Diff(want, sendUntilServed(t, web, c)); diff != "" {
		t.Errorf("result after restart (-want +got):\n%s", diff)
	}
	// A new id is handled.
	c.ID = "cmd-2"
	if res := sendUntilServed(t, web, c); res.Error != "call 2" {
		t.Errorf("new command: %+v", res)
	}
	if n := handled.Load(); n != 2 {
		t.Errorf("handled %d times, want 2", n)
	}
}

func TestCommandsAreHandledInOrder(t *testing.T) {
	b, _ := newBus(t)
	var mu sync.Mutex
	var order []string
	serveCommands(t, b, "n1", func(_ context.Context, c tandem.Command) tandem.CommandResult {
		mu.Lock()
		order = append(order, c.ID)
		mu.Unlock()
		return tandem.CommandResult{OK: true}
	})
	sendUntilServed(t, b, tandem.Command{ID: "warmup", Node: "n1"})
	var want []string
	for i := range 20 {
		id := fmt.Sprint("c", i)
		want = append(want, id)
		if _, err := b.SendCommand(t.Context(), tandem.Command{ID: id, Node: "n1"}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(append([]string{"warmup"}, want...), order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestCommandToAnAbsentNodeIsUnavailable(t *testing.T) {
	b, _ := newBus(t)
	_, err := b.SendCommand(t.Context(), tandem.Command{ID: "c1", Node: "nobody"})
	wantCode(t, err, tandem.EUnavailable)
}

func TestSeatRequestRoundTripsSeatsAndErrors(t *testing.T) {
	srv := startServer(t, "", "")
	n1 := connect(t, natsbus.Config{Server: srv, Name: "n1"})
	n2 := connect(t, natsbus.Config{Server: srv, Name: "n2"})
	exp := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- n2.ServeSeats(ctx, "n2", func(_ context.Context, r tandem.SeatRequest) (tandem.Seat, error) {
			if r.RoomID == "full" {
				return tandem.Seat{}, tandem.Errorf(tandem.ERoomFull, "room full is full")
			}
			return tandem.Seat{Token: "secret", RoomID: r.RoomID, PlayerID: r.PlayerID, Node: "n2", NodeURL: "ws://n2/ws", ExpiresAt: exp}, nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var seat tandem.Seat
	eventually(t, 10*time.Second, func() error {
		var err error
		seat, err = n1.RequestSeat(t.Context(), "n2", tandem.SeatRequest{RoomID: "r1", PlayerID: "alice", FromNode: "n1"})
		return err
	})
	want := tandem.Seat{Token: "secret", RoomID: "r1", PlayerID: "alice", Node: "n2", NodeURL: "ws://n2/ws", ExpiresAt: exp}
	if diff := cmp.Diff(want, seat); diff != "" {
		t.Errorf("seat (-want +got):\n%s", diff)
	}
	_, err := n1.RequestSeat(t.Context(), "n2", tandem.SeatRequest{RoomID: "full", PlayerID: "alice"})
	wantCode(t, err, tandem.ERoomFull)
	if tandem.ErrorMessageOf(err) != "room full is full" {
		t.Errorf("message %q", tandem.ErrorMessageOf(err))
	}
	_, err = n1.RequestSeat(t.Context(), "n3", tandem.SeatRequest{RoomID: "r1"})
	wantCode(t, err, tandem.EUnavailable)
}
