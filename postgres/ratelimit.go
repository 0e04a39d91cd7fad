package postgres

import (
	"context"
	"fmt"
	"time"
)

// rateWindow returns the fixed window containing now: windows start at
// multiples of window since the Unix epoch (not since Go's zero time, which
// time.Truncate would use).
func rateWindow(window time.Duration, now time.Time) (start, end time.Time, err error) {
	w := window.Microseconds()
	if w <= 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("postgres: rate limit window %v is shorter than a microsecond", window)
	}
	us := now.UnixMicro()
	s := us - us%w
	if us%w < 0 {
		s -= w
	}
	return time.UnixMicro(s).UTC(), time.UnixMicro(s + w).UTC(), nil
}

func (t *tx) HitRateLimit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	start, end, err := rateWindow(window, now)
	if err != nil {
		return 0, err
	}
	// One statement, so concurrent hits on the same counter each count.
	var n int
	err = t.tx.QueryRow(ctx, `INSERT INTO rate_limits (key, window_start, window_end, count) VALUES ($1, $2, $3, 1)
		ON CONFLICT (key, window_start, window_end) DO UPDATE SET count = rate_limits.count + 1
		RETURNING count`, key, start, end).Scan(&n)
	if err != nil {
		return 0, dbError(err, "hit rate limit", "", "")
	}
	return n, nil
}

func (t *tx) RateLimitCount(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	start, end, err := rateWindow(window, now)
	if err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRow(ctx, `SELECT COALESCE(sum(count), 0) FROM rate_limits
		WHERE key = $1 AND window_start = $2 AND window_end = $3`, key, start, end).Scan(&n)
	if err != nil {
		return 0, dbError(err, "read rate limit", "", "")
	}
	return n, nil
}

func (t *tx) ResetRateLimit(ctx context.Context, key string) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM rate_limits WHERE key = $1`, key); err != nil {
		return dbError(err, "reset rate limit", "", "")
	}
	return nil
}

// A window [start, end) has ended by the time its end is reached, hence <=.
func (t *tx) DeleteOldRateLimits(ctx context.Context, before time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM rate_limits WHERE window_end <= $1`, timeArg(before))
	if err != nil {
		return 0, dbError(err, "delete old rate limits", "", "")
	}
	return int(tag.RowsAffected()), nil
}
