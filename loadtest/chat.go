package loadtest

import (
	"context"
	"fmt"
	"sync"
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
	o := r.openRooms(ctx, cfg.Clients, cfg.RoomSize)
	b := &broadcastRun{r: r}
	rs := new(readers)
	for _, c := range o.clients {
		rs.start(c, b.receive)
	}
	defer closeAll(o.clients, rs)
	if len(o.clients) == 0 {
		return nil, fmt.Errorf("no connection opened: %w", o.firstErr)
	}
	r.setStatus(func() string { return fmt.Sprintf("%s messages sent", groupThousands(int64(b.sent.Load()))) })

	stop := make(chan struct{})
	var sendErrs sync.Map
	var wg sync.WaitGroup
	for i, c := range o.clients {
		wg.Go(func() {
			if err := b.send(ctx, c, i, len(o.clients), stop); err != nil {
				sendErrs.Store(c.player, err)
			}
		})
	}
	warm := min(time.Second, cfg.Duration/5)
	r.logf("%d players sending; %s warm-up, then %s measured", len(o.clients), warm, cfg.Duration)
	sleep(ctx, warm)
	b.measuring.Store(true)
	u := r.startUsage()
	sleep(ctx, cfg.Duration)
	b.measuring.Store(false)
	p := u.stop()
	close(stop)
	wg.Wait()

	offered := 0
	for _, room := range o.perRoom {
		offered += len(room) * len(room) * cfg.Rate
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
	if n := b.refused.Load(); n > 0 {
		rep.note("the server refused %d messages: raise its --msg-rate, --msg-burst and --byte-rate", n)
	}
	sendErrs.Range(func(k, v any) bool {
		rep.note("sender %s stopped: %v", k, hint(v.(error)))
		return false
	})
	rep.noteFailures(o, rs)
	return rep, nil
}
