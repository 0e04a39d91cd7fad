package main

import (
	"encoding/json"
	"fmt"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/protocol"
	"github.com/tandemhq/tandem/room"
)

// TicTacToeType is the room type "tictactoe": two players take turns putting
// their mark on a 3×3 board; X moves first. The server owns the game: it
// checks every move, sends the board after every change, and ends the room
// once the game is decided.
//
// Everything on the wire is JSON. The game state, sent as the room's
// snapshot (in joined) and as the "board" message:
//
//	{"board":["X","","O","","","","","",""],"x":"alice","o":"bob","turn":"alice","winner":"","draw":false}
//
// board holds the cells row by row ("" = empty); x and o are the players
// holding each mark ("" = seat free); turn is the player to move ("" until
// both seats are taken, and after the end); winner and draw say how it
// ended.
//
// Messages:
//
//	client → room    "move"      {"cell":N}            N in 0..8, row by row
//	room → everyone  "board"     the game state        after every join, leave and move
//	room → player    "rejected"  {"reason":"..."}      a move that was not allowed
//
// A player picks a mark with join metadata {"mark":"O"} (or gets the free
// one); asking for a mark that is taken is refused by JoinAttempt. A room
// the matchmaker made (a queue of room type tictactoe with 2 teams of 1)
// seats its match: the first team plays X, the second O, and no one else
// gets in. Leaving
// during a game forfeits it. A disconnected player keeps its seat for the
// seat hold, and the game simply waits for its move.
func TicTacToeType() room.Type {
	return room.Type{
		Name: "tictactoe",
		New:  func() room.Handler { return &ticTacToe{} },
		// The runtime refuses a third player (room_full) and join-or-create
		// skips a full room, so two strangers who ask for "a tictactoe room"
		// are paired and the next one gets a new room.
		MaxPlayers: 2,
		// No TickRate: the game moves only when a player does.
	}
}

// game is the state of one game; its JSON is the wire format above.
type game struct {
	Board  [9]string `json:"board"`
	X      string    `json:"x"`
	O      string    `json:"o"`
	Turn   string    `json:"turn"`
	Winner string    `json:"winner"`
	Draw   bool      `json:"draw"`
}

// ticTacToe is the room's Handler. The runtime calls its hooks one at a
// time on the room's goroutine, so it needs no locks. room.Base supplies
// the hooks it does not need (Disconnect, Rejoin, Tick, Shutdown).
type ticTacToe struct {
	room.Base
	game game
	// seat is the mark JoinAttempt chose for the player being admitted;
	// Join, which the runtime calls right after a JoinAttempt that returns
	// nil, seats the player there.
	seat string
	// marks are the matched players' marks in a room of a match, nil in a
	// room players asked for themselves.
	marks map[string]string
}

// Init reads the room's creation options: the matchmaker creates a
// match's room with a tandem.MatchInfo (its teams); players creating a
// room themselves send none.
func (t *ticTacToe) Init(_ *room.Room, options []byte) error {
	if len(options) == 0 {
		return nil
	}
	var m tandem.MatchInfo
	if err := json.Unmarshal(options, &m); err != nil || len(m.Teams) != 2 || len(m.Teams[0]) != 1 || len(m.Teams[1]) != 1 {
		return tandem.Errorf(tandem.EInvalid, "a tictactoe room's options are a match of two teams of one")
	}
	t.marks = map[string]string{m.Teams[0][0]: "X", m.Teams[1][0]: "O"}
	return nil
}

// JoinAttempt is the only hook that sees the join metadata, so it chooses
// the player's mark, or refuses the join with a reason the player reads.
func (t *ticTacToe) JoinAttempt(_ *room.Room, p *tandem.Player, metadata []byte) error {
	if t.marks != nil {
		mark, ok := t.marks[p.ID]
		if !ok {
			return tandem.Errorf(tandem.EJoinRejected, "this game is for its matched players")
		}
		t.seat = mark
		return nil
	}
	var ask struct {
		Mark string `json:"mark"`
	}
	if len(metadata) > 0 {
		if err := json.Unmarshal(metadata, &ask); err != nil || (ask.Mark != "X" && ask.Mark != "O") {
			return tandem.Errorf(tandem.EInvalid, `join metadata must be {"mark":"X"} or {"mark":"O"}`)
		}
	}
	switch {
	case ask.Mark == "X" && t.game.X != "":
		return tandem.Errorf(tandem.EJoinRejected, "mark X is taken by %s", t.game.X)
	case ask.Mark == "O" && t.game.O != "":
		return tandem.Errorf(tandem.EJoinRejected, "mark O is taken by %s", t.game.O)
	case ask.Mark != "":
		t.seat = ask.Mark
	case t.game.X == "":
		t.seat = "X"
	default:
		t.seat = "O" // MaxPlayers: 2 leaves a seat free for every join the runtime lets through
	}
	return nil
}

// Join seats the player; the game starts when both seats are taken.
func (t *ticTacToe) Join(r *room.Room, p *tandem.Player) {
	if t.seat == "X" {
		t.game.X = p.ID
	} else {
		t.game.O = p.ID
	}
	if t.game.X != "" && t.game.O != "" {
		t.game.Turn = t.game.X
		// A label operators see in the console's room list (and filter
		// by: label phase=playing).
		_ = r.SetLabel("phase", "playing")
	}
	t.broadcast(r)
}

// Leave frees the seat of a player who leaves before the game starts; one
// who leaves during the game forfeits it.
func (t *ticTacToe) Leave(r *room.Room, p *tandem.Player, _ protocol.LeaveReason) {
	switch {
	case t.over():
		// The room is ending; its members are leaving.
	case t.game.Turn != "":
		t.game.Winner, t.game.Turn = t.opponent(p.ID), ""
		t.broadcast(r)
		r.End()
	case p.ID == t.game.X:
		t.game.X = ""
		t.broadcast(r)
	case p.ID == t.game.O:
		t.game.O = ""
		t.broadcast(r)
	}
}

// Message plays a move. The client's word is checked against the rules
// here, on the server: a move out of turn, off the board or onto a taken
// cell changes nothing and is answered to its sender only.
func (t *ticTacToe) Message(r *room.Room, p *tandem.Player, m room.Message) {
	var mv struct {
		Cell *int `json:"cell"`
	}
	if m.Topic != "move" || json.Unmarshal(m.Data, &mv) != nil || mv.Cell == nil {
		t.reject(r, p, `send topic "move" with {"cell":N}, N in 0..8`)
		return
	}
	if reason := t.check(p.ID, *mv.Cell); reason != "" {
		t.reject(r, p, reason)
		return
	}
	t.play(*mv.Cell)
	t.broadcast(r)
	if t.over() {
		r.End() // members leave with ROOM_CLOSED; they saw the final board first
	}
}

// Snapshot is the state a joining player starts from (joined.state). Both
// players may see everything, so it ignores p.
func (t *ticTacToe) Snapshot(*room.Room, *tandem.Player) []byte {
	b, _ := json.Marshal(t.game) // cannot fail: strings and a bool
	return b
}

// check returns why playerID may not play cell now, or "" if it may.
func (t *ticTacToe) check(playerID string, cell int) string {
	switch {
	case t.game.Turn == "":
		return "the game has not started: waiting for an opponent"
	case t.game.Turn != playerID:
		return "not your turn"
	case cell < 0 || cell > 8:
		return fmt.Sprintf("cell %d is off the board (0..8)", cell)
	case t.game.Board[cell] != "":
		return fmt.Sprintf("cell %d is taken", cell)
	}
	return ""
}

// play puts the mover's mark on cell and passes the turn, or decides the
// game.
func (t *ticTacToe) play(cell int) {
	mark := "X"
	if t.game.Turn == t.game.O {
		mark = "O"
	}
	t.game.Board[cell] = mark
	switch {
	case t.wins(mark):
		t.game.Winner, t.game.Turn = t.game.Turn, ""
	case t.full():
		t.game.Draw, t.game.Turn = true, ""
	default:
		t.game.Turn = t.opponent(t.game.Turn)
	}
}

var lines = [8][3]int{
	{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, // rows
	{0, 3, 6}, {1, 4, 7}, {2, 5, 8}, // columns
	{0, 4, 8}, {2, 4, 6}, // diagonals
}

func (t *ticTacToe) wins(mark string) bool {
	for _, l := range lines {
		if t.game.Board[l[0]] == mark && t.game.Board[l[1]] == mark && t.game.Board[l[2]] == mark {
			return true
		}
	}
	return false
}

func (t *ticTacToe) full() bool {
	for _, c := range t.game.Board {
		if c == "" {
			return false
		}
	}
	return true
}

func (t *ticTacToe) over() bool { return t.game.Winner != "" || t.game.Draw }

func (t *ticTacToe) opponent(playerID string) string {
	if playerID == t.game.X {
		return t.game.O
	}
	return t.game.X
}

func (t *ticTacToe) broadcast(r *room.Room) { r.Broadcast("board", t.Snapshot(r, nil)) }

func (t *ticTacToe) reject(r *room.Room, p *tandem.Player, reason string) {
	b, _ := json.Marshal(map[string]string{"reason": reason})
	r.Send([]string{p.ID}, "rejected", b)
}
