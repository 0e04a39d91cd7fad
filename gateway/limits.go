package gateway

import (
	"sync"
	"time"

	"github.com/tandemhq/tandem/session"
)

// bucket is a token bucket: rate tokens per second up to burst.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, n, rate, burst float64) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// limiter holds one session's rate limits. It outlives the session's
// connections, so a reconnect does not refill the buckets; its lock covers
// the moment two connections of a session overlap during a resume.
type limiter struct {
	mu             sync.Mutex
	msgs, bytes    bucket
	creates        bucket
	violations     int
	violationsFrom time.Time
}

// Limits for one session. Zero disables a limit.
type Limits struct {
	MsgRate, MsgBurst    int // frames per second, and burst
	ByteRate             int // bytes per second (burst: one second's worth, at least one max frame)
	MaxRooms             int // rooms a session may be in at once
	RoomCreatesPerMinute int
	FloodViolations      int           // refused frames within FloodWindow that close the session
	FloodWindow          time.Duration // default 10 s
}

// allowFrame reports whether a frame of n bytes is within the rates.
func (l *limiter) allowFrame(lim *Limits, now time.Time, n, maxFrame int, housekeeping bool) (ok bool, kind string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim.MsgRate > 0 && !housekeeping && !l.msgs.take(now, 1, float64(lim.MsgRate), float64(max(lim.MsgBurst, 1))) {
		return false, "messages"
	}
	if lim.ByteRate > 0 && !l.bytes.take(now, float64(n), float64(lim.ByteRate), float64(max(lim.ByteRate, maxFrame))) {
		return false, "bytes"
	}
	return true, ""
}

// allowCreate reports whether the session may create another room now.
func (l *limiter) allowCreate(lim *Limits, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim.RoomCreatesPerMinute <= 0 {
		return true
	}
	perSec := float64(lim.RoomCreatesPerMinute) / 60
	return l.creates.take(now, 1, perSec, float64(lim.RoomCreatesPerMinute))
}

// violation records a refused frame and reports whether the session is
// flooding.
func (l *limiter) violation(lim *Limits, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	window := lim.FloodWindow
	if window <= 0 {
		window = 10 * time.Second
	}
	if now.Sub(l.violationsFrom) > window {
		l.violations, l.violationsFrom = 0, now
	}
	l.violations++
	return lim.FloodViolations > 0 && l.violations > lim.FloodViolations
}

// limiter returns the session's limiter, made on first use and dropped
// when the session ends.
func (g *Gateway) limiter(s *session.Session) *limiter {
	if l, ok := g.limiters.Load(s); ok {
		return l.(*limiter)
	}
	l, _ := g.limiters.LoadOrStore(s, new(limiter))
	if s.Ended() {
		// OnEnd may have run before the store: drop it again. (ended is
		// set before OnEnd, so one of the two deletes sees the entry.)
		g.limiters.Delete(s)
	}
	return l.(*limiter)
}
