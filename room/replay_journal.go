package room

import (
	"time"

	"github.com/tandemhq/tandem"
)

// Replay rebuilds a room from its config (type, seed, options, start) and applies
// a journal recorded from it, on the calling goroutine. member returns the
// Member that receives a joining player's frames. Given the same journal and
// seed, a deterministic room sends byte-identical frames.
func Replay(cfg Config, journal []Input, member func(p tandem.Player) Member) (*Room, error) {
	cfg.Journal = nil
	if cfg.Start.IsZero() && len(journal) > 0 {
		cfg.Start = journal[0].At
	}
	start := cfg.Start
	cfg.Clock = func() time.Time { return start } // inputs carry their own times
	r, err := New(cfg)
	if err != nil {
		return nil, err
	}
	for _, in := range journal {
		var m Member
		if in.Kind == InputJoin {
			m = member(in.Player)
		}
		r.apply(input{Input: in, member: m})
	}
	return r, nil
}
