package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	tandem "github.com/tandemhq/tandem"
)

// leases are the job leases held in this process. One process owns a
// SQLite file, so a lease only keeps two jobs of this process apart.
type leases struct {
	mu   sync.Mutex
	held map[string]bool
}

// TryLease takes name if this process does not hold it already. It is
// never lost: nothing outside the process can take it.
func (s *Store) TryLease(ctx context.Context, name string) (func(), <-chan struct{}, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, false, err
	}
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	if s.leases.held[name] {
		return nil, nil, false, nil
	}
	if s.leases.held == nil {
		s.leases.held = make(map[string]bool)
	}
	s.leases.held[name] = true
	var once sync.Once
	release := func() {
		once.Do(func() {
			s.leases.mu.Lock()
			delete(s.leases.held, name)
			s.leases.mu.Unlock()
		})
	}
	return release, make(chan struct{}), true, nil
}

const commandColumns = `id, node, kind, player_id, room_id, text, created_at, created_by,
	state, attempts, last_error, result_ok, result_error, delivered_at`

// CreateCommand inserts c into the outbox; a taken id is EConflict.
func (t *tx) CreateCommand(ctx context.Context, c *tandem.CommandRecord) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO node_commands (`+commandColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Node, string(c.Kind), c.PlayerID, c.RoomID, c.Text, c.CreatedAt.UnixMicro(), c.CreatedBy,
		c.State, c.Attempts, c.LastError, c.ResultOK, c.ResultError, micros(c.DeliveredAt))
	if err != nil {
		return conflict(err, "create command", "a command with this id already exists")
	}
	return nil
}

func scanCommand(row interface{ Scan(...any) error }) (*tandem.CommandRecord, error) {
	var (
		c           tandem.CommandRecord
		kind        string
		createdAt   int64
		deliveredAt sql.NullInt64
	)
	err := row.Scan(&c.ID, &c.Node, &kind, &c.PlayerID, &c.RoomID, &c.Text, &createdAt, &c.CreatedBy,
		&c.State, &c.Attempts, &c.LastError, &c.ResultOK, &c.ResultError, &deliveredAt)
	if err != nil {
		return nil, err
	}
	c.Kind = tandem.CommandKind(kind)
	c.CreatedAt = time.UnixMicro(createdAt).UTC()
	c.DeliveredAt = timeOf(deliveredAt)
	return &c, nil
}

func collectCommands(rows *sql.Rows, err error) ([]*tandem.CommandRecord, error) {
	if err != nil {
		return nil, fmt.Errorf("sqlite: commands: %w", err)
	}
	defer rows.Close()
	var out []*tandem.CommandRecord
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: commands: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: commands: %w", err)
	}
	return out, nil
}

// Command returns one command; ENotFound when unknown.
func (t *tx) Command(ctx context.Context, id string) (*tandem.CommandRecord, error) {
	c, err := scanCommand(t.tx.QueryRowContext(ctx, `SELECT `+commandColumns+` FROM node_commands WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "command", "no such command")
	}
	return c, nil
}

// UpdateCommand writes the delivery fields of c while it is pending: a
// relay that lost its lease must not overwrite what the next one wrote.
func (t *tx) UpdateCommand(ctx context.Context, c *tandem.CommandRecord) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE node_commands SET state = ?, attempts = ?, last_error = ?,
		result_ok = ?, result_error = ?, delivered_at = ? WHERE id = ? AND state = 'pending'`,
		c.State, c.Attempts, c.LastError, c.ResultOK, c.ResultError, micros(c.DeliveredAt), c.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update command: %w", err)
	}
	n, err := affected(res, "update command")
	if err != nil || n > 0 {
		return err
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
		skipNodes = []string{} // json_each of null is one NULL row, and NOT IN (NULL) excludes all
	}
	skip, _ := json.Marshal(skipNodes)
	return collectCommands(t.tx.QueryContext(ctx, `SELECT `+commandColumns+` FROM node_commands
		WHERE state = 'pending' AND node NOT IN (SELECT value FROM json_each(?))
		ORDER BY created_at, id LIMIT ?`, string(skip), listLimit(limit)))
}

// Commands returns up to limit commands, newest first.
func (t *tx) Commands(ctx context.Context, limit int) ([]*tandem.CommandRecord, error) {
	return collectCommands(t.tx.QueryContext(ctx, `SELECT `+commandColumns+` FROM node_commands
		ORDER BY created_at DESC, id DESC LIMIT ?`, listLimit(limit)))
}

// listLimit is a list's limit: 100 by default, at most 1000.
func listLimit(n int) int {
	if n <= 0 {
		return 100
	}
	return min(n, 1000)
}

// jsonText encodes v for a TEXT column, "" for an empty value.
func jsonText[T any](v []T) string {
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

// InsertEvents stores the events not stored yet and returns how many.
func (t *tx) InsertEvents(ctx context.Context, events []tandem.Event) (int, error) {
	stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO cluster_events (id, node, kind, at, session_id, player_id,
		room_id, room_type, reason, close_code, duration, rtt_ms, level, attrs)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: insert events: %w", err)
	}
	defer stmt.Close()
	n := 0
	for _, e := range events {
		res, err := stmt.ExecContext(ctx, e.ID, e.Node, string(e.Kind), e.At.UnixMicro(), e.SessionID, e.PlayerID,
			e.RoomID, e.RoomType, e.Reason, e.CloseCode, e.Duration.Microseconds(), jsonText(e.RTTMillis), e.Level, jsonMap(e.Attrs))
		if err != nil {
			return n, fmt.Errorf("sqlite: insert events: %w", err)
		}
		k, err := affected(res, "insert events")
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

const eventColumns = `id, node, kind, at, session_id, player_id, room_id, room_type, reason,
	close_code, duration, rtt_ms, level, attrs`

func collectEvents(rows *sql.Rows, err error) ([]tandem.Event, error) {
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	defer rows.Close()
	var out []tandem.Event
	for rows.Next() {
		var (
			e          tandem.Event
			kind       string
			at, dur    int64
			rtt, attrs string
		)
		if err := rows.Scan(&e.ID, &e.Node, &kind, &at, &e.SessionID, &e.PlayerID, &e.RoomID, &e.RoomType,
			&e.Reason, &e.CloseCode, &dur, &rtt, &e.Level, &attrs); err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", err)
		}
		e.Kind = tandem.EventKind(kind)
		e.At = time.UnixMicro(at).UTC()
		e.Duration = time.Duration(dur) * time.Microsecond
		if err := decodeJSON(rtt, &e.RTTMillis); err != nil {
			return nil, err
		}
		if err := decodeJSON(attrs, &e.Attrs); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	return out, nil
}

func decodeJSON(s string, dst any) error {
	if s == "" {
		return nil
	}
	if err := json.NewDecoder(strings.NewReader(s)).Decode(dst); err != nil {
		return fmt.Errorf("sqlite: decode %q: %w", s, err)
	}
	return nil
}

// RoomEvents returns up to limit events of the room, newest first.
func (t *tx) RoomEvents(ctx context.Context, roomID string, limit int) ([]tandem.Event, error) {
	return collectEvents(t.tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM cluster_events
		WHERE room_id = ? AND room_id <> '' ORDER BY at DESC, id DESC LIMIT ?`, roomID, listLimit(limit)))
}

// NodeEvents returns up to limit events of the node, newest first.
func (t *tx) NodeEvents(ctx context.Context, node string, limit int) ([]tandem.Event, error) {
	return collectEvents(t.tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM cluster_events
		WHERE node = ? ORDER BY at DESC, id DESC LIMIT ?`, node, listLimit(limit)))
}

// OpenRealtimeSession records an opened session unless recorded already.
func (t *tx) OpenRealtimeSession(ctx context.Context, s *tandem.RealtimeSession) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO realtime_sessions (id, node, player_id, opened_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, s.ID, s.Node, s.PlayerID, micros(s.OpenedAt))
	if err != nil {
		return fmt.Errorf("sqlite: open realtime session: %w", err)
	}
	return nil
}

// CloseRealtimeSession records a closed session.
func (t *tx) CloseRealtimeSession(ctx context.Context, s *tandem.RealtimeSession) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO realtime_sessions
		(id, node, player_id, opened_at, closed_at, close_code, reason, duration, rtt_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET closed_at = excluded.closed_at, close_code = excluded.close_code,
			reason = excluded.reason, duration = excluded.duration, rtt_ms = excluded.rtt_ms
		WHERE realtime_sessions.closed_at IS NULL OR realtime_sessions.reason = 'node_down'`,
		s.ID, s.Node, s.PlayerID, micros(s.OpenedAt), micros(s.ClosedAt), s.CloseCode, s.Reason,
		s.Duration.Microseconds(), jsonText(s.RTTMillis))
	if err != nil {
		return fmt.Errorf("sqlite: close realtime session: %w", err)
	}
	return nil
}

// RealtimeSessions returns up to limit sessions of the player, newest first.
func (t *tx) RealtimeSessions(ctx context.Context, playerID string, limit int) ([]*tandem.RealtimeSession, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT id, node, player_id, opened_at, closed_at, close_code, reason,
		duration, rtt_ms FROM realtime_sessions WHERE player_id = ?
		ORDER BY opened_at DESC, id DESC LIMIT ?`, playerID, listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: realtime sessions: %w", err)
	}
	defer rows.Close()
	var out []*tandem.RealtimeSession
	for rows.Next() {
		var (
			s              tandem.RealtimeSession
			opened, closed sql.NullInt64
			dur            int64
			rtt            string
		)
		if err := rows.Scan(&s.ID, &s.Node, &s.PlayerID, &opened, &closed, &s.CloseCode, &s.Reason, &dur, &rtt); err != nil {
			return nil, fmt.Errorf("sqlite: realtime sessions: %w", err)
		}
		s.OpenedAt, s.ClosedAt = timeOf(opened), timeOf(closed)
		s.Duration = time.Duration(dur) * time.Microsecond
		if err := decodeJSON(rtt, &s.RTTMillis); err != nil {
			return nil, err
		}
		out = append(out, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: realtime sessions: %w", err)
	}
	return out, nil
}

// CloseNodeSessions closes the open sessions of node opened by at and
// returns them. Later ones belong to the node's next life (a restart with
// the same id).
func (t *tx) CloseNodeSessions(ctx context.Context, node string, at time.Time, reason string) ([]*tandem.RealtimeSession, error) {
	rows, err := t.tx.QueryContext(ctx, `UPDATE realtime_sessions SET closed_at = ?, close_code = 0, reason = ?,
		duration = CASE WHEN opened_at IS NULL THEN 0 ELSE ? - opened_at END
		WHERE node = ? AND closed_at IS NULL AND (opened_at IS NULL OR opened_at <= ?)
		RETURNING id, node, player_id`, at.UnixMicro(), reason, at.UnixMicro(), node, at.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("sqlite: close node sessions: %w", err)
	}
	defer rows.Close()
	var out []*tandem.RealtimeSession
	for rows.Next() {
		s := &tandem.RealtimeSession{}
		if err := rows.Scan(&s.ID, &s.Node, &s.PlayerID); err != nil {
			return nil, fmt.Errorf("sqlite: close node sessions: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: close node sessions: %w", err)
	}
	return out, nil
}

// DeleteOldClusterHistory removes the events, finished commands, closed
// sessions and matches older than before.
func (t *tx) DeleteOldClusterHistory(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for _, q := range []string{
		`DELETE FROM cluster_events WHERE at < ?`,
		`DELETE FROM node_commands WHERE state <> 'pending' AND created_at < ?`,
		`DELETE FROM realtime_sessions WHERE closed_at IS NOT NULL AND closed_at < ?`,
		`DELETE FROM matches WHERE at < ?`,
	} {
		res, err := t.tx.ExecContext(ctx, q, before.UnixMicro())
		if err != nil {
			return total, fmt.Errorf("sqlite: delete old cluster history: %w", err)
		}
		n, err := affected(res, "delete old cluster history")
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// PutClusterNode records a live node.
func (t *tx) PutClusterNode(ctx context.Context, n *tandem.ClusterNode) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO cluster_nodes (id, url, version, first_seen, last_heartbeat, down_at)
		VALUES (?, ?, ?, ?, ?, NULL)
		ON CONFLICT (id) DO UPDATE SET url = excluded.url, version = excluded.version,
			last_heartbeat = excluded.last_heartbeat, down_at = NULL`,
		n.ID, n.URL, n.Version, micros(n.FirstSeen), micros(n.LastHeartbeat))
	if err != nil {
		return fmt.Errorf("sqlite: put cluster node: %w", err)
	}
	return nil
}

// ClusterNodes returns every recorded node, by id.
func (t *tx) ClusterNodes(ctx context.Context) ([]*tandem.ClusterNode, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT id, url, version, first_seen, last_heartbeat, down_at
		FROM cluster_nodes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: cluster nodes: %w", err)
	}
	defer rows.Close()
	var out []*tandem.ClusterNode
	for rows.Next() {
		var (
			n               tandem.ClusterNode
			first, hb, down sql.NullInt64
		)
		if err := rows.Scan(&n.ID, &n.URL, &n.Version, &first, &hb, &down); err != nil {
			return nil, fmt.Errorf("sqlite: cluster nodes: %w", err)
		}
		n.FirstSeen, n.LastHeartbeat, n.DownAt = timeOf(first), timeOf(hb), timeOf(down)
		out = append(out, &n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: cluster nodes: %w", err)
	}
	return out, nil
}

// MarkNodeDown sets the node's DownAt.
func (t *tx) MarkNodeDown(ctx context.Context, id string, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE cluster_nodes SET down_at = ? WHERE id = ?`, micros(at), id)
	if err != nil {
		return fmt.Errorf("sqlite: mark node down: %w", err)
	}
	return mustAffect(res, "mark node down", "no such node")
}

// AccountBansFrom returns the account bans not lifted and not ended at now.
func (t *tx) AccountBansFrom(ctx context.Context, now time.Time) ([]*tandem.Ban, error) {
	return collectBans(t.tx.QueryContext(ctx, `SELECT `+banColumns+` FROM player_bans
		WHERE scope = 'account' AND lifted_at IS NULL AND (ends_at IS NULL OR ends_at > ?)
		ORDER BY player_id, id`, now.UnixMicro()))
}

// PutRevocation stores r, keeping the later of each time when the player
// has a revocation already.
func (t *tx) PutRevocation(ctx context.Context, r *tandem.Revocation) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO token_revocations (player_id, issued_before, expires_at)
		VALUES (?, ?, ?)
		ON CONFLICT (player_id) DO UPDATE SET
			issued_before = max(issued_before, excluded.issued_before),
			expires_at = max(expires_at, excluded.expires_at)`,
		r.PlayerID, r.IssuedBefore.UnixMicro(), r.ExpiresAt.UnixMicro())
	if err != nil {
		return fmt.Errorf("sqlite: put revocation: %w", err)
	}
	return nil
}

// RevocationsFrom returns the revocations not expired at now, by player.
func (t *tx) RevocationsFrom(ctx context.Context, now time.Time) ([]tandem.Revocation, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT player_id, issued_before, expires_at FROM token_revocations
		WHERE expires_at > ? ORDER BY player_id`, now.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("sqlite: list revocations: %w", err)
	}
	defer rows.Close()
	var out []tandem.Revocation
	for rows.Next() {
		var (
			r               tandem.Revocation
			issued, expires sql.NullInt64
		)
		if err := rows.Scan(&r.PlayerID, &issued, &expires); err != nil {
			return nil, fmt.Errorf("sqlite: list revocations: %w", err)
		}
		r.IssuedBefore, r.ExpiresAt = timeOf(issued), timeOf(expires)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list revocations: %w", err)
	}
	return out, nil
}

// DeleteExpiredRevocations removes the revocations expired at now.
func (t *tx) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM token_revocations WHERE expires_at <= ?`, now.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired revocations: %w", err)
	}
	return affected(res, "delete expired revocations")
}
