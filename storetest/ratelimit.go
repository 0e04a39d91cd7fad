package storetest

import (
	"testing"
	"time"

	tandem "github.com/tandemhq/tandem"
)

// windowStart is the start of a one-minute window: windows begin at
// multiples of their length since the Unix epoch.
func windowStart() time.Time { return time.Unix(31_666_666*60, 0) }

func hit(t *testing.T, s tandem.Store, key string, window time.Duration, now time.Time) int {
	t.Helper()
	var n int
	update(t, s, func(tx tandem.Tx) error {
		var err error
		n, err = tx.HitRateLimit(t.Context(), key, window, now)
		return err
	})
	return n
}

func count(t *testing.T, s tandem.Store, key string, window time.Duration, now time.Time) int {
	t.Helper()
	var n int
	view(t, s, func(tx tandem.Tx) error {
		var err error
		n, err = tx.RateLimitCount(t.Context(), key, window, now)
		return err
	})
	return n
}

func testRateLimitCountsPerWindow(t *testing.T, s tandem.Store) {
	w0 := windowStart()
	for i, offset := range []time.Duration{0, 10 * time.Second, time.Minute - time.Microsecond} {
		if n := hit(t, s, "login:alice", time.Minute, w0.Add(offset)); n != i+1 {
			t.Errorf("hit %d in the first window = %d, want %d", i+1, n, i+1)
		}
	}
	if n := count(t, s, "login:alice", time.Minute, w0.Add(30*time.Second)); n != 3 {
		t.Errorf("count in the first window = %d, want 3", n)
	}
	if n := count(t, s, "login:alice", time.Minute, w0.Add(-time.Microsecond)); n != 0 {
		t.Errorf("count in the window before = %d, want 0", n)
	}
	if n := count(t, s, "login:alice", time.Minute, w0.Add(time.Minute)); n != 0 {
		t.Errorf("count in the next window before any hit = %d, want 0", n)
	}
	if n := hit(t, s, "login:alice", time.Minute, w0.Add(time.Minute)); n != 1 {
		t.Errorf("first hit in the next window = %d, want 1", n)
	}
	if n := count(t, s, "login:bob", time.Minute, w0); n != 0 {
		t.Errorf("count of another key = %d, want 0", n)
	}
	if n := count(t, s, "login:alice", time.Minute, w0); n != 3 {
		t.Errorf("count in the first window after the next one began = %d, want 3", n)
	}
}

func testResetRateLimit(t *testing.T, s tandem.Store) {
	w0 := windowStart()
	hit(t, s, "login:alice", time.Minute, w0)
	hit(t, s, "login:alice", time.Minute, w0.Add(time.Minute))
	hit(t, s, "login:bob", time.Minute, w0)
	update(t, s, func(tx tandem.Tx) error { return tx.ResetRateLimit(t.Context(), "login:alice") })
	if n := count(t, s, "login:alice", time.Minute, w0); n != 0 {
		t.Errorf("count after reset = %d, want 0", n)
	}
	if n := count(t, s, "login:alice", time.Minute, w0.Add(time.Minute)); n != 0 {
		t.Errorf("count in the later window after reset = %d, want 0", n)
	}
	if n := count(t, s, "login:bob", time.Minute, w0); n != 1 {
		t.Errorf("count of another key after reset = %d, want 1", n)
	}
	if n := hit(t, s, "login:alice", time.Minute, w0); n != 1 {
		t.Errorf("hit after reset = %d, want 1", n)
	}
}

func testDeleteOldRateLimits(t *testing.T, s tandem.Store) {
	w0 := windowStart()
	hit(t, s, "a", time.Minute, w0)
	hit(t, s, "b", time.Minute, w0.Add(time.Minute))
	hit(t, s, "c", time.Minute, w0.Add(2*time.Minute))
	hit(t, s, "c", time.Minute, w0.Add(2*time.Minute))

	var n int
	update(t, s, func(tx tandem.Tx) error {
		var err error
		// The windows of a and b ended before this; c's has not.
		n, err = tx.DeleteOldRateLimits(t.Context(), w0.Add(2*time.Minute+30*time.Second))
		return err
	})
	if n != 2 {
		t.Errorf("DeleteOldRateLimits = %d, want 2", n)
	}
	if n := count(t, s, "a", time.Minute, w0); n != 0 {
		t.Errorf("count of a deleted window = %d, want 0", n)
	}
	if n := count(t, s, "c", time.Minute, w0.Add(2*time.Minute)); n != 2 {
		t.Errorf("count of the current window = %d, want 2", n)
	}
}
