package conformance

import (
	"context"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/gateway"
)

// RefusedPrefix: the conformance node's session-start hook refuses players
// whose id starts with it (permission_denied, then the final close kicked).
const RefusedPrefix = "refused"

// Apply sets n's settings on cfg and gives the node what every scenario may
// use besides the built-in room types: the RPCs "echo" (replies with its
// data) and "fail" (fails with the error code its data names, or internal),
// and a session-start hook that refuses players named RefusedPrefix….
// A driver of another SDK runs its scenarios against a node configured the
// same way.
func (n Node) Apply(cfg *gateway.Config) {
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	cfg.Heartbeat = ms(n.HeartbeatMS)
	cfg.SeatHold = ms(n.SeatHoldMS)
	cfg.SendQueue = n.SendQueue
	cfg.ReplayCount = n.ReplayCount
	cfg.ReplayBytes = n.ReplayBytes
	cfg.MaxFrameBytes = n.MaxFrameBytes
	cfg.Limits.MsgRate = n.MsgRate
	cfg.Limits.MsgBurst = n.MsgBurst
	cfg.Limits.ByteRate = n.ByteRate
	cfg.Limits.FloodViolations = n.FloodRefusals
	cfg.RPCs = map[string]tandem.RPC{
		"echo": func(_ context.Context, _ *tandem.Player, data []byte) ([]byte, error) { return data, nil },
		"fail": func(_ context.Context, _ *tandem.Player, data []byte) ([]byte, error) {
			return nil, tandem.Errorf(ErrorCodeNamed(string(data)), "conformance: failed as asked")
		},
	}
	cfg.Hooks.SessionStart = func(_ context.Context, p *tandem.Player) error {
		if strings.HasPrefix(p.ID, RefusedPrefix) {
			return tandem.Errorf(tandem.EPermission, "conformance: this player is refused")
		}
		return nil
	}
}

// ErrorCodeNamed returns the error code with this name (docs/protocol.md
// §11), or internal.
func ErrorCodeNamed(name string) tandem.ErrorCode {
	for _, c := range tandem.ErrorCodes() {
		if c.String() == name {
			return c
		}
	}
	return tandem.EInternal
}
