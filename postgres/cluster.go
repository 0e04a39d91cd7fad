package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem"
)

const commandColumns = `id, node, kind, player_id, room_id, text, created_at, created_by,
	state, attempts, last_error, result_ok, result_error, delivered_at`

// CreateCommand inserts c into the outbox; a taken id is EConflict.
func (t *tx) CreateCommand(ctx context.Context, c *tandem.CommandRecord) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO node_commands (`+commandColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		c.ID, c.Node, string(c.Kind), c.PlayerID, c.RoomID, c.Text, instantArg(c.CreatedAt), c.CreatedBy,
		c.State, c.Attempts, c.LastError, c.ResultOK, c.ResultError, timeArg(c.DeliveredAt))
	if err != nil {
		return dbError(err, "create command", "a command with this id already exists", "")
	}
	return nil
}

func scanCommand(row pgx.Row) (*tandem.CommandRecord, error) {
	var (
		c    tandem.CommandRecord
		kind string
	)
	err := row.Scan(&c.ID, &c.Node, &kind, &c.PlayerID, &c.RoomID, &c.Text, scanTime(&c.CreatedAt), &c.CreatedBy,
		&c.State, &c.Attempts, &c.LastError, &c.ResultOK, &c.ResultError, scanTime(&c.DeliveredAt))
	if err != nil {
		return nil, err
	}
	c.Kind = tandem.CommandKind(kind)
	return &c, nil
}

func collectCommands(rows pgx.Rows, err error) ([]*tandem.CommandRecord, error) {
	if err != nil {
		return nil, dbError(err, "list commands", "", "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.CommandRecord, error) { return scanCommand(r) })
	if err != nil {
		return nil, dbError(err, "list commands", "", "")
	}
	return out, nil
}

// Command returns one command; ENotFound when unknown.
func (t *tx) Command(ctx context.Context, id string) (*tandem.CommandRecord, error) {
	c, err := scanCommand(t.tx.QueryRow(ctx, `SELECT `+commandColumns+` FROM node_commands WHERE id = $1`+t.lockRows, id))
	if err != nil {
		return nil, notFound(err, "command", "no such command")
	}
	return c, nil
}

// UpdateCommand writes the delivery fields of c while it is pending: a
// relay that lost its lease must not overwrite what the next one wrote.
func (t *tx) UpdateCommand(ctx context.Context, c *tandem.CommandRecord) error {
	tag, err := t.tx.Exec(ctx, `UPDATE node_commands SET state = $1, attempts = $2, last_error = $3,
		result_ok = $4, result_error = $5, delivered_at = $6 WHERE id = $7 AND state = 'pending'`,
		c.State, c.Attempts, noNUL(c.LastError), c.ResultOK, noNUL(c.ResultError), timeArg(c.DeliveredAt), c.ID)
	if err != nil {
		return dbError(err, "update command", "", "")
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	if _, err := t.Command(ctx, c.ID); err != nil {
		return err
	}
	return tandem.Errorf(tandem.EConflict, "the command is no longer pending")
}

// PendingCommands returns up to limit pending commands, oldest first,
// except those for skipNodes.
func (t *tx) PendingCommands(ctx context.Context, limit int, skipNodes []string) ([]*tandem.CommandRecord, error) {
	if skipNodes == nil {
		skipNodes = []string{}
	}
	return collectCommands(t.tx.Query(ctx, `SELECT `+commandColumns+` FROM node_commands
		WHERE state = 'pending' AND NOT (node = ANY($2)) ORDER BY created_at, id LIMIT $1`, listLimit(limit), skipNodes))
}

// noNUL drops NUL characters, which PostgreSQL's text refuses: events
// carry raw log messages and attributes of realtime nodes.
func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", "") }

// Commands returns up to limit commands, newest first.
func (t *tx) Commands(ctx context.Context, limit int) ([]*tandem.CommandRecord, error) {
	return collectCommands(t.tx.Query(ctx, `SELECT `+commandColumns+` FROM node_commands
		ORDER BY created_at DESC, id DESC LIMIT $1`, listLimit(limit)))
}

// listLimit is a list's limit: 100 by default, at most 1000.
func listLimit(n int) int {
	if n <= 0 {
		return 100
	}
	return min(n, 1000)
}

func jsonList[T any](v []T) string {
	if len(v) == 0 {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonMap(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func decodeJSON(s string, dst any) error {
	if s == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		return fmt.Errorf("postgres: decode %q: %w", s, err)
	}
	return nil
}

// InsertEvents stores the events not stored yet and returns how many.
func (t *tx) InsertEvents(ctx context.Context, events []tandem.Event) (int, error) {
	// One round trip for the whole batch: the inserts are pipelined.
	var b pgx.Batch
	for _, e := range events {
		b.Queue(`INSERT INTO cluster_events (id, node, kind, at, session_id, player_id,
			room_id, room_type, reason, close_code, duration, rtt_ms, level, attrs)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING`,
			noNUL(e.ID), noNUL(e.Node), noNUL(string(e.Kind)), instantArg(e.At), noNUL(e.SessionID), noNUL(e.PlayerID),
			noNUL(e.RoomID), noNUL(e.RoomType), noNUL(e.Reason), e.CloseCode, e.Duration.Microseconds(),
			jsonList(e.RTTMillis), noNUL(e.Level), noNUL(jsonMap(e.Attrs)))
	}
	br := t.tx.SendBatch(ctx, &b)
	n := 0
	for range events {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return n, dbError(err, "insert events", "", "")
		}
		n += int(tag.RowsAffected())
	}
	if err := br.Close(); err != nil {
		return n, dbError(err, "insert events", "", "")
	}
	return n, nil
}

const eventColumns = `id, node, kind, at, session_id, player_id, room_id, room_type, reason,
	close_code, duration, rtt_ms, level, attrs`

func collectEvents(rows pgx.Rows, err error) ([]tandem.Event, error) {
	if err != nil {
		return nil, dbError(err, "list events", "", "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tandem.Event, error) {
		var (
			e          tandem.Event
			kind       string
			dur        int64
			rtt, attrs string
		)
		if err := r.Scan(&e.ID, &e.Node, &kind, scanTime(&e.At), &e.SessionID, &e.PlayerID, &e.RoomID, &e.RoomType,
			&e.Reason, &e.CloseCode, &dur, &rtt, &e.Level, &attrs); err != nil {
			return e, err
		}
		e.Kind = tandem.EventKind(kind)
		e.Duration = time.Duration(dur) * time.Microsecond
		if err := decodeJSON(rtt, &e.RTTMillis); err != nil {
			return e, err
		}
		return e, decodeJSON(attrs, &e.Attrs)
	})
	if err != nil {
		return nil, dbError(err, "list events", "", "")
	}
	return out, nil
}

// RoomEvents returns up to limit events of the room, newest first.
func (t *tx) RoomEvents(ctx context.Context, roomID string, limit int) ([]tandem.Event, error) {
	return collectEvents(t.tx.Query(ctx, `SELECT `+eventColumns+` FROM cluster_events
		WHERE room_id = $1 AND room_id <> '' ORDER BY at DESC, id DESC LIMIT $2`, roomID, listLimit(limit)))
}

// NodeEvents returns up to limit events of the node, newest first.
func (t *tx) NodeEvents(ctx context.Context, node string, limit int) ([]tandem.Event, error) {
	return collectEvents(t.tx.Query(ctx, `SELECT `+eventColumns+` FROM cluster_events
		WHERE node = $1 ORDER BY at DESC, id DESC LIMIT $2`, node, listLimit(limit)))
}

// OpenRealtimeSession records an opened session unless recorded already.
func (t *tx) OpenRealtimeSession(ctx context.Context, s *tandem.RealtimeSession) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO realtime_sessions (id, node, player_id, opened_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`, noNUL(s.ID), noNUL(s.Node), noNUL(s.PlayerID), timeArg(s.OpenedAt))
	if err != nil {
		return dbError(err, "open realtime session", "", "")
	}
	return nil
}

// CloseRealtimeSession records a closed session.
func (t *tx) CloseRealtimeSession(ctx context.Context, s *tandem.RealtimeSession) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO realtime_sessions
		(id, node, player_id, opened_at, closed_at, close_code, reason, duration, rtt_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO UPDATE SET closed_at = excluded.closed_at, close_code = excluded.close_code,
			reason = excluded.reason, duration = excluded.duration, rtt_ms = excluded.rtt_ms
		WHERE realtime_sessions.closed_at IS NULL OR realtime_sessions.reason = 'node_down'`,
		noNUL(s.ID), noNUL(s.Node), noNUL(s.PlayerID), timeArg(s.OpenedAt), timeArg(s.ClosedAt), s.CloseCode, noNUL(s.Reason),
		s.Duration.Microseconds(), jsonList(s.RTTMillis))
	if err != nil {
		return dbError(err, "close realtime session", "", "")
	}
	return nil
}

// RealtimeSessions returns up to limit sessions of the player, newest first.
func (t *tx) RealtimeSessions(ctx context.Context, playerID string, limit int) ([]*tandem.RealtimeSession, error) {
	rows, err := t.tx.Query(ctx, `SELECT id, node, player_id, opened_at, closed_at, close_code, reason,
		duration, rtt_ms FROM realtime_sessions WHERE player_id = $1
		ORDER BY opened_at DESC NULLS LAST, id DESC LIMIT $2`, playerID, listLimit(limit))
	if err != nil {
		return nil, dbError(err, "realtime sessions", "", "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.RealtimeSession, error) {
		var (
			s   tandem.RealtimeSession
			dur int64
			rtt string
		)
		if err := r.Scan(&s.ID, &s.Node, &s.PlayerID, scanTime(&s.OpenedAt), scanTime(&s.ClosedAt),
			&s.CloseCode, &s.Reason, &dur, &rtt); err != nil {
			return nil, err
		}
		s.Duration = time.Duration(dur) * time.Microsecond
		return &s, decodeJSON(rtt, &s.RTTMillis)
	})
	if err != nil {
		return nil, dbError(err, "realtime sessions", "", "")
	}
	return out, nil
}

// CloseNodeSessions closes the open sessions of node opened by at and
// returns them. Later ones belong to the node's next life (a restart with
// the same id).
func (t *tx) CloseNodeSessions(ctx context.Context, node string, at time.Time, reason string) ([]*tandem.RealtimeSession, error) {
	rows, err := t.tx.Query(ctx, `UPDATE realtime_sessions SET closed_at = $1, close_code = 0, reason = $2,
		duration = CASE WHEN opened_at IS NULL THEN 0
			ELSE (extract(epoch FROM $1 - opened_at) * 1000000)::bigint END
		WHERE node = $3 AND closed_at IS NULL AND (opened_at IS NULL OR opened_at <= $1)
		RETURNING id, node, player_id`, instantArg(at), reason, node)
	if err != nil {
		return nil, dbError(err, "close node sessions", "", "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.RealtimeSession, error) {
		var s tandem.RealtimeSession
		err := r.Scan(&s.ID, &s.Node, &s.PlayerID)
		return &s, err
	})
	if err != nil {
		return nil, dbError(err, "close node sessions", "", "")
	}
	return out, nil
}

// DeleteOldClusterHistory removes the events, finished commands, closed
// sessions and matches older than before.
func (t *tx) DeleteOldClusterHistory(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for _, q := range []string{
		`DELETE FROM cluster_events WHERE at < $1`,
		`DELETE FROM node_commands WHERE state <> 'pending' AND created_at < $1`,
		`DELETE FROM realtime_sessions WHERE closed_at IS NOT NULL AND closed_at < $1`,
		`DELETE FROM matches WHERE at < $1`,
	} {
		tag, err := t.tx.Exec(ctx, q, instantArg(before))
		if err != nil {
			return total, dbError(err, "delete old cluster history", "", "")
		}
		total += int(tag.RowsAffected())
	}
	return total, nil
}

// PutClusterNode records a live node.
func (t *tx) PutClusterNode(ctx context.Context, n *tandem.ClusterNode) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO cluster_nodes (id, url, version, first_seen, last_heartbeat, down_at)
		VALUES ($1, $2, $3, $4, $5, NULL)
		ON CONFLICT (id) DO UPDATE SET url = excluded.url, version = excluded.version,
			last_heartbeat = excluded.last_heartbeat, down_at = NULL`,
		n.ID, n.URL, n.Version, timeArg(n.FirstSeen), timeArg(n.LastHeartbeat))
	if err != nil {
		return dbError(err, "put cluster node", "", "")
	}
	return nil
}

// ClusterNodes returns every recorded node, by id.
func (t *tx) ClusterNodes(ctx context.Context) ([]*tandem.ClusterNode, error) {
	rows, err := t.tx.Query(ctx, `SELECT id, url, version, first_seen, last_heartbeat, down_at
		FROM cluster_nodes ORDER BY id`)
	if err != nil {
		return nil, dbError(err, "cluster nodes", "", "")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.ClusterNode, error) {
		var n tandem.ClusterNode
		err := r.Scan(&n.ID, &n.URL, &n.Version, scanTime(&n.FirstSeen), scanTime(&n.LastHeartbeat), scanTime(&n.DownAt))
		return &n, err
	})
	if err != nil {
		return nil, dbError(err, "cluster nodes", "", "")
	}
	return out, nil
}

// MarkNodeDown sets the node's DownAt.
func (t *tx) MarkNodeDown(ctx context.Context, id string, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE cluster_nodes SET down_at = $1 WHERE id = $2`, timeArg(at), id)
	if err != nil {
		return dbError(err, "mark node down", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "no such node")
	}
	return nil
}

// AccountBansFrom returns the account bans not lifted and not ended at now.
func (t *tx) AccountBansFrom(ctx context.Context, now time.Time) ([]*tandem.Ban, error) {
	return collectBans(t.tx.Query(ctx, `SELECT `+banColumns+` FROM player_bans
		WHERE scope = 'account' AND lifted_at IS NULL AND (ends_at IS NULL OR ends_at > $1)
		ORDER BY player_id, id`, instantArg(now)))
}

// PutRevocation stores r, keeping the later of each time when the player
// has a revocation already.
func (t *tx) PutRevocation(ctx context.Context, r *tandem.Revocation) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO token_revocations (player_id, issued_before, expires_at)
		VALUES ($1, $2, $3)
		ON CONFLICT (player_id) DO UPDATE SET
			issued_before = GREATEST(token_revocations.issued_before, EXCLUDED.issued_before),
			expires_at = GREATEST(token_revocations.expires_at, EXCLUDED.expires_at)`,
		r.PlayerID, instantArg(r.IssuedBefore), instantArg(r.ExpiresAt))
	if err != nil {
		return dbError(err, "put revocation", "", "")
	}
	return nil
}

// RevocationsFrom returns the revocations not expired at now, by player.
func (t *tx) RevocationsFrom(ctx context.Context, now time.Time) ([]tandem.Revocation, error) {
	rows, err := t.tx.Query(ctx, `SELECT player_id, issued_before, expires_at FROM token_revocations
		WHERE expires_at > $1 ORDER BY player_id`, instantArg(now))
	if err != nil {
		return nil, dbError(err, "list revocations", "", "")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tandem.Revocation, error) {
		var r tandem.Revocation
		err := row.Scan(&r.PlayerID, scanTime(&r.IssuedBefore), scanTime(&r.ExpiresAt))
		return r, err
	})
	if err != nil {
		return nil, dbError(err, "list revocations", "", "")
	}
	return out, nil
}

// DeleteExpiredRevocations removes the revocations expired at now.
func (t *tx) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM token_revocations WHERE expires_at <= $1`, instantArg(now))
	if err != nil {
		return 0, dbError(err, "delete expired revocations", "", "")
	}
	return int(tag.RowsAffected()), nil
}
