// Command customgame is a game server built on Tandem as a library. It is
// the whole program a game team writes: a main that hands its own room type
// (tictactoe, in tictactoe.go) and its own RPC (whoami) to app.Main, and gets
// every tandem subcommand with them — dev, realtime, token, version — next to
// the built-in relay and arena room types.
//
//	go run ./examples/customgame dev
//
// README.md walks through playing a game.
package main

import (
	"context"
	"encoding/json"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/app"
	"github.com/tandemhq/tandem/room"
)

func main() {
	// app.Run is the whole program: every subcommand, with SIGTERM (and
	// Ctrl-C) draining the servers before exit 0.
	app.Run(app.Options{
		RoomTypes: []room.Type{TicTacToeType()},
		RPCs:      map[string]tandem.RPC{"whoami": whoami},
	})
}

// whoami is an RPC: clients call it with rpc{method:"whoami"}. It answers
// with the player the session's token names — the server's word, not the
// client's — as {"id":"alice","name":"Alice"}. An RPC runs on the calling
// session's reader, outside any room, so it must be quick; a *tandem.Error
// it returns reaches the client as is.
func whoami(_ context.Context, p *tandem.Player, data []byte) ([]byte, error) {
	if len(data) > 0 {
		return nil, tandem.Errorf(tandem.EInvalid, "whoami takes no data")
	}
	return json.Marshal(struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}{p.ID, p.Name})
}
