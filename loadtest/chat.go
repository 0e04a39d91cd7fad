package loadtest

import (
	"context"
	"fmt"
	"time"
)

// chat runs Rooms rooms of RoomSize players in which every player sends a
// Payload-byte room_message to all (DELIVERY_ALL) Rate times a second, the
// players' sends spread over the period: the fan-out of a room chat, where
// each room delivers RoomSize² × Rate frames a second. Every member times
// each message from its send to its receipt, as in broadcast.
func (r *runner) chat(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	rep := r.newReport(fmt.Sprintf("%d relay rooms × %d players, every player sends %d messages/s to all, %d-byte payload, %s measured",
		cfg.Rooms, cfg.RoomSize, cfg.Rate, cfg.Payload, cfg.Duration))
	r.logf("opening %d rooms of %d", cfg.Rooms, cfg.RoomSize)
	b := &broadcastRun{r: r}
	f, closeBots := r.openFanOut(ctx, b, true)
	defer closeBots()
	if len(f.senders) == 0 {
		return nil, fmt.Errorf("no connection opened: %w", f.firstErr)
	}
	r.setStatus(func() string { return fmt.Sprintf("%s messages sent", groupThousands(int64(b.sent.Load()))) })
	p, sendErrs := b.drive(ctx, f, "players")

	offered := 0
	for _, n := range f.rooms {
		offered += n * n * cfg.Rate
	}
	delivered := float64(b.delivered.Load()) / p.wall.Seconds()
	rep.atLeast("frames delivered", delivered, UnitPerSecond, 0.99*float64(offered),
		fmt.Sprintf("≥ 99%% of %s/s offered", groupThousands(int64(offered))))
	rep.info("messages sent", float64(b.sent.Load())/p.wall.Seconds(), UnitPerSecond)
	rep.latency("send → receipt", &b.latency, 0, 0)
	rep.usageMeasures(p, 0)
	if p.serverMeasure && b.delivered.Load() > 0 {
		rep.info("server CPU per delivered frame", float64(p.serverCPU)/float64(time.Microsecond)/float64(b.delivered.Load()), UnitMicroseconds)
	}
	b.notes(rep, f, sendErrs)
	return rep, nil
}
