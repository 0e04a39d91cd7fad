package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	tandem "github.com/tandemhq/tandem"
)

// PutMatchQueue stores q, replacing the queue of the same name.
func (t *tx) PutMatchQueue(ctx context.Context, q *tandem.MatchQueueRecord) error {
	config, err := json.Marshal(q.MatchQueue)
	if err != nil {
		return fmt.Errorf("sqlite: put match queue: %w", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO match_queues (name, config, updated_at, updated_by)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at,
			updated_by = excluded.updated_by`,
		q.Name, string(config), q.UpdatedAt.UnixMicro(), q.UpdatedBy)
	if err != nil {
		return fmt.Errorf("sqlite: put match queue: %w", err)
	}
	return nil
}

// DeleteMatchQueue removes a queue; ENotFound when unknown.
func (t *tx) DeleteMatchQueue(ctx context.Context, name string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM match_queues WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("sqlite: delete match queue: %w", err)
	}
	return mustAffect(res, "delete match queue", "no such queue")
}

func scanMatchQueue(row interface{ Scan(...any) error }) (*tandem.MatchQueueRecord, error) {
	var (
		q       tandem.MatchQueueRecord
		name    string
		config  string
		updated int64
	)
	if err := row.Scan(&name, &config, &updated, &q.UpdatedBy); err != nil {
		return nil, err
	}
	if err := decodeJSON(config, &q.MatchQueue); err != nil {
		return nil, err
	}
	// The columns are the truth: the JSON is only the rest.
	q.Name, q.UpdatedAt = name, time.UnixMicro(updated).UTC()
	return &q, nil
}

// MatchQueues returns every queue, by name.
func (t *tx) MatchQueues(ctx context.Context) ([]*tandem.MatchQueueRecord, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT name, config, updated_at, updated_by FROM match_queues ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: match queues: %w", err)
	}
	defer rows.Close()
	var out []*tandem.MatchQueueRecord
	for rows.Next() {
		q, err := scanMatchQueue(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: match queues: %w", err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: match queues: %w", err)
	}
	return out, nil
}

// MatchQueue returns one queue; ENotFound when unknown.
func (t *tx) MatchQueue(ctx context.Context, name string) (*tandem.MatchQueueRecord, error) {
	q, err := scanMatchQueue(t.tx.QueryRowContext(ctx,
		`SELECT name, config, updated_at, updated_by FROM match_queues WHERE name = ?`, name))
	if err != nil {
		return nil, notFound(err, "match queue", "no such queue")
	}
	return q, nil
}

// InsertMatches stores the matches not stored yet and returns how many.
func (t *tx) InsertMatches(ctx context.Context, matches []tandem.MatchRecord) (int, error) {
	stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO matches (id, queue, room_id, node, players, wait_ms, backfill, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: insert matches: %w", err)
	}
	defer stmt.Close()
	n := 0
	for _, m := range matches {
		players, err := teamsJSON(m.Teams)
		if err != nil {
			return n, err
		}
		res, err := stmt.ExecContext(ctx, m.ID, m.Queue, m.RoomID, m.Node, players, m.WaitMS, m.Backfill, m.At.UnixMicro())
		if err != nil {
			return n, fmt.Errorf("sqlite: insert matches: %w", err)
		}
		k, err := affected(res, "insert matches")
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// teamsJSON is how a match's players are stored: [][]string, "[]" when
// there are none.
func teamsJSON(teams [][]string) (string, error) {
	if len(teams) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(teams)
	if err != nil {
		return "", fmt.Errorf("sqlite: encode teams: %w", err)
	}
	return string(b), nil
}

// RecentMatches returns up to limit matches of queue, newest first.
func (t *tx) RecentMatches(ctx context.Context, queue string, limit int) ([]tandem.MatchRecord, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT id, queue, room_id, node, players, wait_ms, backfill, at
		FROM matches WHERE queue = ? ORDER BY at DESC, id DESC LIMIT ?`, queue, listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: recent matches: %w", err)
	}
	defer rows.Close()
	var out []tandem.MatchRecord
	for rows.Next() {
		var (
			m       tandem.MatchRecord
			players string
			at      int64
		)
		if err := rows.Scan(&m.ID, &m.Queue, &m.RoomID, &m.Node, &players, &m.WaitMS, &m.Backfill, &at); err != nil {
			return nil, fmt.Errorf("sqlite: recent matches: %w", err)
		}
		if err := decodeJSON(players, &m.Teams); err != nil {
			return nil, err
		}
		if len(m.Teams) == 0 {
			m.Teams = nil
		}
		m.At = time.UnixMicro(at).UTC()
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: recent matches: %w", err)
	}
	return out, nil
}

// MatchWaits returns the waits of queue's matches made at or after since.
func (t *tx) MatchWaits(ctx context.Context, queue string, since time.Time) ([]int64, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT wait_ms FROM matches WHERE queue = ? AND at >= ?`, queue, since.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("sqlite: match waits: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var w int64
		if err := rows.Scan(&w); err != nil {
			return nil, fmt.Errorf("sqlite: match waits: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: match waits: %w", err)
	}
	return out, nil
}
