package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem"
)

// PutMatchQueue stores q, replacing the queue of the same name.
func (t *tx) PutMatchQueue(ctx context.Context, q *tandem.MatchQueueRecord) error {
	config, err := json.Marshal(q.MatchQueue)
	if err != nil {
		return fmt.Errorf("postgres: put match queue: %w", err)
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO match_queues (name, config, updated_at, updated_by)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at,
			updated_by = excluded.updated_by`,
		q.Name, noNUL(string(config)), instantArg(q.UpdatedAt), noNUL(q.UpdatedBy))
	if err != nil {
		return dbError(err, "put match queue", "", "")
	}
	return nil
}

// DeleteMatchQueue removes a queue; ENotFound when unknown.
func (t *tx) DeleteMatchQueue(ctx context.Context, name string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM match_queues WHERE name = $1`, name)
	if err != nil {
		return dbError(err, "delete match queue", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "no such queue")
	}
	return nil
}

func scanMatchQueue(row pgx.Row) (*tandem.MatchQueueRecord, error) {
	var (
		q       tandem.MatchQueueRecord
		name    string
		config  string
		updated time.Time
	)
	if err := row.Scan(&name, &config, scanTime(&updated), &q.UpdatedBy); err != nil {
		return nil, err
	}
	if err := decodeJSON(config, &q.MatchQueue); err != nil {
		return nil, err
	}
	// The columns are the truth: the JSON is only the rest.
	q.Name, q.UpdatedAt = name, updated
	return &q, nil
}

// MatchQueues returns every queue, by name.
func (t *tx) MatchQueues(ctx context.Context) ([]*tandem.MatchQueueRecord, error) {
	rows, err := t.tx.Query(ctx, `SELECT name, config, updated_at, updated_by FROM match_queues ORDER BY name`)
	if err != nil {
		return nil, dbError(err, "match queues", "", "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.MatchQueueRecord, error) { return scanMatchQueue(r) })
	if err != nil {
		return nil, dbError(err, "match queues", "", "")
	}
	return out, nil
}

// MatchQueue returns one queue; ENotFound when unknown.
func (t *tx) MatchQueue(ctx context.Context, name string) (*tandem.MatchQueueRecord, error) {
	q, err := scanMatchQueue(t.tx.QueryRow(ctx,
		`SELECT name, config, updated_at, updated_by FROM match_queues WHERE name = $1`, name))
	if err != nil {
		return nil, notFound(err, "match queue", "no such queue")
	}
	return q, nil
}

// InsertMatches stores the matches not stored yet and returns how many.
func (t *tx) InsertMatches(ctx context.Context, matches []tandem.MatchRecord) (int, error) {
	// One round trip for the whole batch: the inserts are pipelined.
	var b pgx.Batch
	for _, m := range matches {
		players, err := teamsJSON(m.Teams)
		if err != nil {
			return 0, err
		}
		b.Queue(`INSERT INTO matches (id, queue, room_id, node, players, wait_ms, backfill, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
			noNUL(m.ID), noNUL(m.Queue), noNUL(m.RoomID), noNUL(m.Node), noNUL(players), m.WaitMS, m.Backfill, instantArg(m.At))
	}
	br := t.tx.SendBatch(ctx, &b)
	n := 0
	for range matches {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return n, dbError(err, "insert matches", "", "")
		}
		n += int(tag.RowsAffected())
	}
	if err := br.Close(); err != nil {
		return n, dbError(err, "insert matches", "", "")
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
		return "", fmt.Errorf("postgres: encode teams: %w", err)
	}
	return string(b), nil
}

// RecentMatches returns up to limit matches of queue, newest first.
func (t *tx) RecentMatches(ctx context.Context, queue string, limit int) ([]tandem.MatchRecord, error) {
	rows, err := t.tx.Query(ctx, `SELECT id, queue, room_id, node, players, wait_ms, backfill, at
		FROM matches WHERE queue = $1 ORDER BY at DESC, id DESC LIMIT $2`, queue, listLimit(limit))
	if err != nil {
		return nil, dbError(err, "recent matches", "", "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tandem.MatchRecord, error) {
		var (
			m       tandem.MatchRecord
			players string
		)
		if err := r.Scan(&m.ID, &m.Queue, &m.RoomID, &m.Node, &players, &m.WaitMS, &m.Backfill, scanTime(&m.At)); err != nil {
			return m, err
		}
		if err := decodeJSON(players, &m.Teams); err != nil {
			return m, err
		}
		if len(m.Teams) == 0 {
			m.Teams = nil
		}
		return m, nil
	})
	if err != nil {
		return nil, dbError(err, "recent matches", "", "")
	}
	return out, nil
}

// MatchWaits returns the waits of queue's matches made at or after since.
func (t *tx) MatchWaits(ctx context.Context, queue string, since time.Time) ([]int64, error) {
	rows, err := t.tx.Query(ctx, `SELECT wait_ms FROM matches WHERE queue = $1 AND at >= $2`, queue, instantArg(since))
	if err != nil {
		return nil, dbError(err, "match waits", "", "")
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, dbError(err, "match waits", "", "")
	}
	return out, nil
}
