package sqlite

import (
	"context"
	"fmt"
	"time"

	tandem "github.com/tandemhq/tandem"
)

// rateWindow returns the bounds, in unix microseconds, of the window of
// the given length that contains now. Windows start at multiples of their
// length since the Unix epoch, so every replica agrees on them.
func rateWindow(window time.Duration, now time.Time) (start, end int64, err error) {
	w := window.Microseconds()
	if w <= 0 {
		return 0, 0, tandem.Errorf(tandem.EInvalid, "rate limit window must be at least a microsecond")
	}
	t := now.UnixMicro()
	start = t - t%w
	if t < 0 && t%w != 0 {
		start -= w
	}
	return start, start + w, nil
}

// HitRateLimit adds one to key's counter for the window containing now.
func (t *tx) HitRateLimit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	start, end, err := rateWindow(window, now)
	if err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRowContext(ctx, `
		INSERT INTO rate_limits (key, window_start, window_end, count) VALUES (?, ?, ?, 1)
		ON CONFLICT (key, window_start, window_end) DO UPDATE SET count = count + 1
		RETURNING count`,
		key, start, end).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: hit rate limit: %w", err)
	}
	return n, nil
}

// RateLimitCount returns key's count in the window containing now.
func (t *tx) RateLimitCount(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	start, end, err := rateWindow(window, now)
	if err != nil {
		return 0, err
	}
	var n int
	err = t.tx.QueryRowContext(ctx, `
		SELECT coalesce(sum(count), 0) FROM rate_limits
		WHERE key = ? AND window_start = ? AND window_end = ?`,
		key, start, end).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: rate limit count: %w", err)
	}
	return n, nil
}

// ResetRateLimit forgets key's counters.
func (t *tx) ResetRateLimit(ctx context.Context, key string) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM rate_limits WHERE key = ?`, key); err != nil {
		return fmt.Errorf("sqlite: reset rate limit: %w", err)
	}
	return nil
}

// DeleteOldRateLimits removes counters of windows that ended before t (a
// window ends at its exclusive upper bound).
func (t *tx) DeleteOldRateLimits(ctx context.Context, before time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM rate_limits WHERE window_end <= ?`, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete old rate limits: %w", err)
	}
	return affected(res, "delete old rate limits")
}
