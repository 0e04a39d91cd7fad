package loadtest

import (
	"context"
	"fmt"
	"time"
)

// discard is the reader of a connection that only holds its seat.
func discard(*client, *view) error { return nil }

// idle opens the connections, holds them for Duration while answering the
// server's pings, and reports the server's RSS growth per connection.
func (r *runner) idle(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	rep := r.newReport(fmt.Sprintf("%d connections in relay rooms of %d, held idle for %s", cfg.Clients, cfg.RoomSize, cfg.Duration))
	var before procSample
	if cfg.ServerPID != 0 {
		var err error
		if before, err = readProc(cfg.ServerPID); err != nil {
			return nil, err
		}
	}
	r.logf("opening %d connections in rooms of %d", cfg.Clients, cfg.RoomSize)
	o := r.openRooms(ctx, cfg.Clients, cfg.RoomSize)
	rs := new(readers)
	for _, c := range o.clients {
		rs.start(c, discard)
	}
	defer closeAll(o.clients, rs)
	if len(o.clients) == 0 {
		return nil, fmt.Errorf("no connection opened: %w", o.firstErr)
	}
	r.logf("%d connections open in %s; holding them for %s", len(o.clients), o.took.Round(time.Millisecond), cfg.Duration)
	u := r.startUsage()
	sleep(ctx, cfg.Duration)
	p := u.stop()
	held := len(o.clients) - int(rs.lost.Load())

	rep.atLeast("connections held", float64(held), UnitCount, float64(cfg.Clients), fmt.Sprintf("= %d", cfg.Clients))
	if p.serverMeasure {
		growth := float64(p.serverRSSKiB - before.rssKiB)
		rep.info("server RSS before", float64(before.rssKiB)/1024, UnitMiB)
		rep.info("server RSS after", float64(p.serverRSSKiB)/1024, UnitMiB)
		if held > 0 {
			perConn := growth / float64(held)
			rep.atMost("server RSS growth per connection", perConn, UnitKiB, 8, "≤ 8 KiB")
			rep.atMost("server RSS growth per connection (stretch)", perConn, UnitKiB, 4, "≤ 4 KiB")
		}
	}
	rep.info("connects per second while opening", float64(len(o.clients))/o.took.Seconds(), UnitPerSecond)
	rep.usageMeasures(p, 0)
	rep.noteFailures(&o.openStats, rs)
	return rep, nil
}

// connect opens the connections as fast as Concurrency connections in
// flight allow and reports the rate of connect + auth + join.
func (r *runner) connect(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	rep := r.newReport(fmt.Sprintf("%d connections in relay rooms of %d, at most %d being opened at once", cfg.Clients, cfg.RoomSize, cfg.Concurrency))
	r.logf("opening %d connections, %d at a time", cfg.Clients, cfg.Concurrency)
	openCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	u := r.startUsage()
	var o *openStats
	var joined int
	var p phase
	if r.sdk() {
		so := r.openSDKRooms(openCtx, cfg.Clients, cfg.RoomSize, nil)
		p = u.stop()
		defer closeSDK(so.all)
		o, joined = &so.openStats, len(so.bots)
	} else {
		ro := r.openRooms(openCtx, cfg.Clients, cfg.RoomSize)
		p = u.stop()
		rs := new(readers)
		for _, c := range ro.clients {
			rs.start(c, discard)
		}
		defer closeAll(ro.clients, rs)
		o, joined = &ro.openStats, len(ro.clients)
	}
	cancel()
	if joined == 0 {
		return nil, fmt.Errorf("no connection opened: %w", o.firstErr)
	}
	rate := float64(joined) / o.took.Seconds()
	rep.atLeast("connect + auth + join", rate, UnitPerSecond, 8000, "≥ 8,000/s")
	rep.info("connections opened", float64(joined), UnitCount)
	rep.latency("time to joined", o.latency, 0, 0)
	rep.usageMeasures(p, 0)
	if p.serverMeasure && joined > 0 {
		rep.info("server CPU per connection", float64(p.serverCPU)/float64(time.Microsecond)/float64(joined), UnitMicroseconds)
	}
	rep.noteFailures(o, nil)
	if r.sdk() {
		r.noteSDK(rep)
	}
	return rep, nil
}
