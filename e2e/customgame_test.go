package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem/protocol"
	client "github.com/tandemhq/tandem/sdk/go"
)

// board is the tictactoe game state as examples/customgame documents it.
type board struct {
	Board  [9]string `json:"board"`
	X      string    `json:"x"`
	O      string    `json:"o"`
	Turn   string    `json:"turn"`
	Winner string    `json:"winner"`
	Draw   bool      `json:"draw"`
}

// nextMessage returns the client's next room message, which must have topic.
func nextMessage(t *testing.T, c *client.Client, topic string) []byte {
	t.Helper()
	m := next[*client.RoomMessage](t, c)
	if m.Topic != topic || m.From != "" {
		t.Fatalf("%s got %q from %q: %s, want %q from the room", c.PlayerID(), m.Topic, m.From, m.Data, topic)
	}
	return m.Data
}

// expectBoard checks the next "board" message of each client.
func expectBoard(t *testing.T, want board, cs ...*client.Client) {
	t.Helper()
	for _, c := range cs {
		var got board
		if err := json.Unmarshal(nextMessage(t, c, "board"), &got); err != nil {
			t.Fatalf("%s: board: %v", c.PlayerID(), err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s's board (-want +got):\n%s", c.PlayerID(), diff)
		}
	}
}

func TestCustomGamePlaysTicTacToeAnswersItsRPCAndExitsZeroOnSIGTERM(t *testing.T) {
	t.Parallel()
	game := startDev(t, bins.customgame, t.TempDir())
	alice := dial(t, game.url, game.tokenFor(t, "alice", "--name", "Alice"))
	bob := dial(t, game.url, game.tokenFor(t, "bob"))
	carol := dial(t, game.url, game.tokenFor(t, "carol"))

	// The game's RPC answers with the player of the session's token.
	out, err := alice.RPC(withDeadline(t), "whoami", nil)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	if want := `{"id":"alice","name":"Alice"}`; string(out) != want {
		t.Errorf("whoami = %s, want %s", out, want)
	}

	// Two players who ask for a tictactoe room are paired: alice creates one,
	// bob joins it. Bob's first try asks for alice's mark and is refused.
	ra, err := alice.Join(withDeadline(t), client.JoinOptions{RoomType: "tictactoe"})
	if err != nil {
		t.Fatalf("alice joins: %v", err)
	}
	expectBoard(t, board{X: "alice"}, alice)
	_, err = bob.Join(withDeadline(t), client.JoinOptions{RoomType: "tictactoe", Metadata: []byte(`{"mark":"X"}`)})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != client.CodeJoinRejected || se.Message != "mark X is taken by alice" {
		t.Fatalf("bob asks for X: %v, want join_rejected: mark X is taken by alice", err)
	}
	rb, err := bob.Join(withDeadline(t), client.JoinOptions{RoomType: "tictactoe"})
	if err != nil {
		t.Fatalf("bob joins: %v", err)
	}
	if rb.ID() != ra.ID() {
		t.Fatalf("bob joined room %s, alice is in %s", rb.ID(), ra.ID())
	}
	expectBoard(t, board{X: "alice", O: "bob", Turn: "alice"}, alice, bob)

	// A third player is refused.
	_, err = carol.Join(withDeadline(t), client.JoinOptions{RoomID: ra.ID()})
	if !errors.Is(err, &client.ServerError{Code: client.CodeRoomFull}) {
		t.Fatalf("carol joins a full game: %v, want room_full", err)
	}

	// The server checks moves: bob may not move first.
	move := func(r *client.Room, cell int) {
		t.Helper()
		if err := r.Send(withDeadline(t), "move", fmt.Appendf(nil, `{"cell":%d}`, cell), client.HandlerOnly()); err != nil {
			t.Fatal(err)
		}
	}
	move(rb, 4)
	if got, want := string(nextMessage(t, bob, "rejected")), `{"reason":"not your turn"}`; got != want {
		t.Errorf("bob's move out of turn: %s, want %s", got, want)
	}

	// Alice wins along the top row. Each move waits for the board it makes,
	// so the next player moves in turn.
	want := board{X: "alice", O: "bob", Turn: "alice"}
	for _, m := range []struct {
		room       *client.Room
		cell       int
		mark, turn string
	}{
		{ra, 0, "X", "bob"}, {rb, 3, "O", "alice"}, {ra, 1, "X", "bob"}, {rb, 4, "O", "alice"}, {ra, 2, "X", ""},
	} {
		move(m.room, m.cell)
		want.Board[m.cell], want.Turn = m.mark, m.turn
		if m.turn == "" {
			want.Winner = "alice"
		}
		expectBoard(t, want, alice, bob)
	}

	// A decided game ends its room.
	for _, c := range []*client.Client{alice, bob} {
		if l := next[*client.Left](t, c); l.Reason != protocol.LeaveReason_LEAVE_REASON_ROOM_CLOSED {
			t.Errorf("%s left with %s, want ROOM_CLOSED", c.PlayerID(), l.Reason)
		}
	}

	game.signal(t, syscall.SIGTERM)
	for _, c := range []*client.Client{alice, bob, carol} {
		waitNodeDrained(t, c)
	}
	if code := game.waitExit(t); code != 0 {
		t.Fatalf("customgame dev exited %d after SIGTERM, want 0", code)
	}
}

// A game's room type gets its match from the matchmaker: the matched
// players are seated by team, and no one else gets in.
func TestCustomGameSeatsAMatchByTeam(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	game := startDev(t, bins.customgame, dataDir)
	runWithStdin(t, "operator password 1\n", bins.customgame, "admin", "create",
		"--db", "sqlite:"+filepath.Join(dataDir, "tandem.db"), "--audit-key", filepath.Join(dataDir, "audit-key.pem"),
		"--admin-name", "op", "--role", "operator", "--password-stdin")
	op := loginOperator(t, game.web, "op", "operator password 1")
	if code := op.do(http.MethodPut, "/api/admin/v1/matchmaking/queues/ttt",
		map[string]any{"room_type": "tictactoe", "teams": 2, "team_size": 1}, nil); code != http.StatusOK {
		t.Fatalf("put queue: %d", code)
	}
	alice := dial(t, game.url, game.tokenFor(t, "alice"))
	bob := dial(t, game.url, game.tokenFor(t, "bob"))
	rooms := make(chan *client.Room, 2)
	errs := make(chan error, 2)
	teams := make(map[string]int)
	var mu sync.Mutex
	for _, c := range []*client.Client{alice, bob} {
		go func() {
			r, err := c.Matchmake(withDeadline(t), client.TicketRequest{Queue: "ttt", Progress: func(s client.TicketStatus) {
				if s.State == client.TicketMatched {
					mu.Lock()
					teams[c.PlayerID()] = s.Team
					mu.Unlock()
				}
			}})
			errs <- err
			rooms <- r
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("matchmake: %v", err)
		}
	}
	ra, rb := <-rooms, <-rooms
	if ra.ID() != rb.ID() {
		t.Fatalf("matched into rooms %s and %s", ra.ID(), rb.ID())
	}
	mu.Lock()
	x, o := "alice", "bob"
	if teams["alice"] == 1 {
		x, o = o, x
	}
	mu.Unlock()
	// The board of the second join names both, by team.
	var last board
	if err := json.Unmarshal(ra.State(), &last); err != nil {
		t.Fatal(err)
	}
	for last.X == "" || last.O == "" {
		if err := json.Unmarshal(nextMessage(t, alice, "board"), &last); err != nil {
			t.Fatal(err)
		}
	}
	if last.X != x || last.O != o {
		t.Errorf("X %q, O %q; want the first team's %q and the second's %q", last.X, last.O, x, o)
	}
	carol := dial(t, game.url, game.tokenFor(t, "carol"))
	_, err := carol.Join(withDeadline(t), client.JoinOptions{RoomID: ra.ID()})
	var se *client.ServerError
	if !errors.As(err, &se) || (se.Code != client.CodeJoinRejected && se.Code != client.CodeRoomFull) {
		t.Errorf("carol joining the match's room: %v, want refused", err)
	}
}
