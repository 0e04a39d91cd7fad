package tandem

import (
	"context"
	"time"
)

// Claims are the contents of a realtime token: who the player is and what
// the server vouches for. Realtime nodes trust only claims whose signature
// they verified with a public key.
type Claims struct {
	KeyID     string            `json:"kid"`
	Subject   string            `json:"sub"` // player id
	Name      string            `json:"name,omitempty"`
	Roles     []string          `json:"roles,omitempty"`
	MM        map[string]string `json:"mm,omitempty"` // server-kept matchmaking properties
	ID        string            `json:"jti"`
	IssuedAt  int64             `json:"iat"` // Unix seconds
	ExpiresAt int64             `json:"exp"` // Unix seconds
	Audience  string            `json:"aud"`
}

// AudienceRealtime is the audience of tokens for realtime nodes.
const AudienceRealtime = "tandem.realtime"

// MaxTokenLifetime is the longest lifetime a realtime token may have.
const MaxTokenLifetime = 10 * time.Minute

// Player is an authenticated player as the realtime server knows it.
type Player struct {
	ID    string
	Name  string
	Roles []string
	MM    map[string]string
}

// RPC is a server-side function a game registers by name; clients call it
// with rpc{method, data}. A returned *Error reaches the client as is; any
// other error as internal. It runs on the calling session's reader, so it
// should be quick.
type RPC func(ctx context.Context, p *Player, data []byte) ([]byte, error)

// Hooks are the game's callbacks on session events. Each is optional.
type Hooks struct {
	// SessionStart runs when a new session opens (not on a resume). An
	// error refuses the session: the client gets it and a final close.
	SessionStart func(ctx context.Context, p *Player) error
	// SessionEnd runs when a session ends for good.
	SessionEnd func(ctx context.Context, p *Player)
}
