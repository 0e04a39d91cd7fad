package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tandemhq/tandem"
)

// Limits of one player search.
const (
	playerSearchDefaultLimit = 50
	playerSearchMaxLimit     = 200
)

// loginRecordsDefaultLimit is how many logins LoginRecords returns when
// asked for none.
const loginRecordsDefaultLimit = 20

// nullText writes "" as NULL, for nullable unique columns such as a
// guest's email, where many rows have none.
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullBytes writes an empty hash as NULL, for nullable bytea columns. A
// NULL equals nothing, so a nil hash argument matches no row.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// instantArg is how a time is written to a NOT NULL column: microseconds in
// UTC. A zero time is stored as the year 1 and read back as zero.
func instantArg(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// mmText is how matchmaking properties are stored: a JSON object, "{}"
// when there are none.
func mmText(mm map[string]string) (string, error) {
	if len(mm) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(mm)
	if err != nil {
		return "", fmt.Errorf("postgres: encode matchmaking properties: %w", err)
	}
	return string(b), nil
}

// mmOf reads properties stored by mmText back, none as nil.
func mmOf(s string) (map[string]string, error) {
	var mm map[string]string
	if err := json.Unmarshal([]byte(s), &mm); err != nil {
		return nil, fmt.Errorf("postgres: decode matchmaking properties: %w", err)
	}
	if len(mm) == 0 {
		return nil, nil
	}
	return mm, nil
}

// likeEscape makes s match itself literally inside a LIKE pattern whose
// escape character is '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

const playerColumns = `id, display_name, email, password_hash, locale, avatar_url, mm,
	created_at, updated_at, last_login_at, deleted_at`

func scanPlayer(row pgx.Row) (*tandem.PlayerAccount, error) {
	var (
		a     tandem.PlayerAccount
		email pgtype.Text
		mm    string
	)
	err := row.Scan(&a.ID, &a.DisplayName, &email, &a.PasswordHash, &a.Locale, &a.AvatarURL, &mm,
		scanTime(&a.CreatedAt), scanTime(&a.UpdatedAt), scanTime(&a.LastLoginAt), scanTime(&a.DeletedAt))
	if err != nil {
		return nil, err
	}
	if a.MM, err = mmOf(mm); err != nil {
		return nil, err
	}
	a.Email = email.String
	return &a, nil
}

// playerConflict names the constraint a player write can break: the
// primary key (on create) or the unique email.
func playerConflict(err error, doing string) error {
	msg := "a player with this email already exists"
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "players_pkey" {
		msg = "the player already exists"
	}
	return dbError(err, doing, msg, "")
}

func (t *tx) CreatePlayer(ctx context.Context, a *tandem.PlayerAccount) error {
	mm, err := mmText(a.MM)
	if err != nil {
		return err
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO players (`+playerColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ID, a.DisplayName, nullText(a.Email), a.PasswordHash, a.Locale, a.AvatarURL, mm,
		timeArg(a.CreatedAt), timeArg(a.UpdatedAt), timeArg(a.LastLoginAt), timeArg(a.DeletedAt))
	if err != nil {
		return playerConflict(err, "create player")
	}
	return nil
}

func (t *tx) Player(ctx context.Context, id string) (*tandem.PlayerAccount, error) {
	a, err := scanPlayer(t.tx.QueryRow(ctx, `SELECT `+playerColumns+` FROM players WHERE id = $1`+t.lockRows, id))
	if err != nil {
		return nil, notFound(err, "read player", "player not found")
	}
	return a, nil
}

// PlayerByEmail compares the email exactly: the service stores and looks
// up emails lower-cased.
func (t *tx) PlayerByEmail(ctx context.Context, email string) (*tandem.PlayerAccount, error) {
	a, err := scanPlayer(t.tx.QueryRow(ctx, `SELECT `+playerColumns+` FROM players WHERE email = $1`+t.lockRows, email))
	if err != nil {
		return nil, notFound(err, "read player by email", "player not found")
	}
	return a, nil
}

func (t *tx) UpdatePlayer(ctx context.Context, a *tandem.PlayerAccount) error {
	mm, err := mmText(a.MM)
	if err != nil {
		return err
	}
	tag, err := t.tx.Exec(ctx, `UPDATE players SET display_name = $2, email = $3, password_hash = $4, locale = $5,
			avatar_url = $6, mm = $7, updated_at = $8, last_login_at = $9, deleted_at = $10
		WHERE id = $1`,
		a.ID, a.DisplayName, nullText(a.Email), a.PasswordHash, a.Locale,
		a.AvatarURL, mm, timeArg(a.UpdatedAt), timeArg(a.LastLoginAt), timeArg(a.DeletedAt))
	if err != nil {
		return playerConflict(err, "update player")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "player not found")
	}
	return nil
}

// SearchPlayers matches an id, an email (lower-cased) or a device id
// exactly, or a part of a display name case-insensitively (ILIKE, which
// folds letters by the database's locale).
func (t *tx) SearchPlayers(ctx context.Context, f tandem.PlayerFilter) ([]*tandem.PlayerAccount, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = playerSearchDefaultLimit
	}
	limit = min(limit, playerSearchMaxLimit)
	q := `SELECT ` + playerColumns + ` FROM players`
	args := []any{limit}
	if f.Query != "" {
		q += ` WHERE id = $2 OR email = $3 OR display_name ILIKE $4 ESCAPE '\'
			OR EXISTS (SELECT 1 FROM player_devices d WHERE d.player_id = players.id AND d.id = $2)`
		args = append(args, f.Query, strings.ToLower(f.Query), "%"+likeEscape(f.Query)+"%")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT $1`
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, dbError(err, "search players", "", "")
	}
	players, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.PlayerAccount, error) { return scanPlayer(r) })
	if err != nil {
		return nil, dbError(err, "search players", "", "")
	}
	return players, nil
}

// CountPlayers counts every stored account, deleted ones (tombstones)
// included.
func (t *tx) CountPlayers(ctx context.Context) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM players`).Scan(&n); err != nil {
		return 0, dbError(err, "count players", "", "")
	}
	return n, nil
}

const deviceColumns = `id, player_id, secret_hash, created_at, last_seen_at`

func scanDevice(row pgx.Row) (*tandem.PlayerDevice, error) {
	var d tandem.PlayerDevice
	if err := row.Scan(&d.ID, &d.PlayerID, &d.SecretHash, scanTime(&d.CreatedAt), scanTime(&d.LastSeenAt)); err != nil {
		return nil, err
	}
	d.SecretHash = bytesOut(d.SecretHash)
	return &d, nil
}

func (t *tx) CreatePlayerDevice(ctx context.Context, d *tandem.PlayerDevice) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO player_devices (`+deviceColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		d.ID, d.PlayerID, bytesArg(d.SecretHash), timeArg(d.CreatedAt), timeArg(d.LastSeenAt))
	if err != nil {
		return dbError(err, "create player device", "the device is already registered", "player not found")
	}
	return nil
}

func (t *tx) PlayerDevice(ctx context.Context, id string) (*tandem.PlayerDevice, error) {
	d, err := scanDevice(t.tx.QueryRow(ctx, `SELECT `+deviceColumns+` FROM player_devices WHERE id = $1`+t.lockRows, id))
	if err != nil {
		return nil, notFound(err, "read player device", "device not found")
	}
	return d, nil
}

// PlayerDevices returns the player's devices, oldest first.
func (t *tx) PlayerDevices(ctx context.Context, playerID string) ([]*tandem.PlayerDevice, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+deviceColumns+` FROM player_devices WHERE player_id = $1
		ORDER BY created_at, id`, playerID)
	if err != nil {
		return nil, dbError(err, "list player devices", "", "")
	}
	devices, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.PlayerDevice, error) { return scanDevice(r) })
	if err != nil {
		return nil, dbError(err, "list player devices", "", "")
	}
	return devices, nil
}

func (t *tx) TouchPlayerDevice(ctx context.Context, id string, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE player_devices SET last_seen_at = $2 WHERE id = $1`, id, timeArg(at))
	if err != nil {
		return dbError(err, "touch player device", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "device not found")
	}
	return nil
}

func (t *tx) DeletePlayerDevices(ctx context.Context, playerID string) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM player_devices WHERE player_id = $1`, playerID); err != nil {
		return dbError(err, "delete player devices", "", "")
	}
	return nil
}

const playerSessionColumns = `id, player_id, method, access_hash, access_expires_at, refresh_hash,
	refresh_expires_at, device_hash, address, user_agent, created_at, last_used_at`

func scanPlayerSession(row pgx.Row) (*tandem.PlayerSession, error) {
	var s tandem.PlayerSession
	err := row.Scan(&s.ID, &s.PlayerID, &s.Method, &s.AccessHash, scanTime(&s.AccessExpiresAt), &s.RefreshHash,
		scanTime(&s.RefreshExpiresAt), &s.DeviceHash, &s.Address, &s.UserAgent,
		scanTime(&s.CreatedAt), scanTime(&s.LastUsedAt))
	if err != nil {
		return nil, err
	}
	s.AccessHash = bytesOut(s.AccessHash)
	s.RefreshHash = bytesOut(s.RefreshHash)
	s.DeviceHash = bytesOut(s.DeviceHash)
	return &s, nil
}

func (t *tx) CreatePlayerSession(ctx context.Context, s *tandem.PlayerSession) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO player_sessions (`+playerSessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		s.ID, s.PlayerID, s.Method, bytesArg(s.AccessHash), timeArg(s.AccessExpiresAt), bytesArg(s.RefreshHash),
		timeArg(s.RefreshExpiresAt), nullBytes(s.DeviceHash), s.Address, s.UserAgent,
		timeArg(s.CreatedAt), timeArg(s.LastUsedAt))
	if err != nil {
		return dbError(err, "create player session", "the session already exists", "player not found")
	}
	return nil
}

// playerSessionWhere returns the one session cond selects, locked inside
// Update so a concurrent refresh of the same token waits and then finds
// it rotated.
func (t *tx) playerSessionWhere(ctx context.Context, doing, cond string, arg any) (*tandem.PlayerSession, error) {
	s, err := scanPlayerSession(t.tx.QueryRow(ctx,
		`SELECT `+playerSessionColumns+` FROM player_sessions WHERE `+cond+t.lockRows, arg))
	if err != nil {
		return nil, notFound(err, doing, "session not found")
	}
	return s, nil
}

func (t *tx) PlayerSessionByAccess(ctx context.Context, hash []byte) (*tandem.PlayerSession, error) {
	return t.playerSessionWhere(ctx, "read player session by access", `access_hash = $1`, bytesArg(hash))
}

func (t *tx) PlayerSessionByRefresh(ctx context.Context, hash []byte) (*tandem.PlayerSession, error) {
	return t.playerSessionWhere(ctx, "read player session by refresh", `refresh_hash = $1`, bytesArg(hash))
}

func (t *tx) PlayerSessionByUsedRefresh(ctx context.Context, hash []byte) (*tandem.PlayerSession, error) {
	return t.playerSessionWhere(ctx, "read player session by used refresh",
		`id = (SELECT session_id FROM player_refresh_used WHERE hash = $1)`, bytesArg(hash))
}

func (t *tx) RotatePlayerSession(ctx context.Context, s *tandem.PlayerSession, usedRefresh []byte) error {
	tag, err := t.tx.Exec(ctx, `UPDATE player_sessions SET access_hash = $2, access_expires_at = $3,
			refresh_hash = $4, refresh_expires_at = $5, last_used_at = $6
		WHERE id = $1`,
		s.ID, bytesArg(s.AccessHash), timeArg(s.AccessExpiresAt),
		bytesArg(s.RefreshHash), timeArg(s.RefreshExpiresAt), timeArg(s.LastUsedAt))
	if err != nil {
		return dbError(err, "rotate player session", "the new token is already in use", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "session not found")
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO player_refresh_used (hash, session_id, used_at) VALUES ($1, $2, $3)`,
		bytesArg(usedRefresh), s.ID, timeArg(s.LastUsedAt))
	if err != nil {
		return dbError(err, "remember used refresh token", "the refresh token was already used", "")
	}
	return nil
}

func (t *tx) TouchPlayerSession(ctx context.Context, id string, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE player_sessions SET last_used_at = $2 WHERE id = $1`, id, timeArg(at))
	if err != nil {
		return dbError(err, "touch player session", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "session not found")
	}
	return nil
}

// PlayerSessions returns the player's sessions, newest first.
func (t *tx) PlayerSessions(ctx context.Context, playerID string) ([]*tandem.PlayerSession, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+playerSessionColumns+` FROM player_sessions WHERE player_id = $1
		ORDER BY created_at DESC, id DESC`, playerID)
	if err != nil {
		return nil, dbError(err, "list player sessions", "", "")
	}
	sessions, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.PlayerSession, error) { return scanPlayerSession(r) })
	if err != nil {
		return nil, dbError(err, "list player sessions", "", "")
	}
	return sessions, nil
}

// DeletePlayerSession ends one session; its used refresh tokens go with it
// (ON DELETE CASCADE).
func (t *tx) DeletePlayerSession(ctx context.Context, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM player_sessions WHERE id = $1`, id)
	if err != nil {
		return dbError(err, "delete player session", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "session not found")
	}
	return nil
}

func (t *tx) DeletePlayerSessions(ctx context.Context, playerID string) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM player_sessions WHERE player_id = $1`, playerID)
	if err != nil {
		return 0, dbError(err, "delete player sessions", "", "")
	}
	return int(tag.RowsAffected()), nil
}

// DeleteDeviceSessions ends the device's sessions; a nil hash is sent as
// NULL and matches none.
func (t *tx) DeleteDeviceSessions(ctx context.Context, deviceHash []byte) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM player_sessions WHERE device_hash = $1`, nullBytes(deviceHash))
	if err != nil {
		return 0, dbError(err, "delete device sessions", "", "")
	}
	return int(tag.RowsAffected()), nil
}

func (t *tx) DeleteExpiredPlayerSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM player_sessions WHERE refresh_expires_at < $1`, instantArg(now))
	if err != nil {
		return 0, dbError(err, "delete expired player sessions", "", "")
	}
	return int(tag.RowsAffected()), nil
}

func (t *tx) AddLoginRecord(ctx context.Context, l *tandem.LoginRecord) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO player_logins (player_id, at, method, device_id, address, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		l.PlayerID, instantArg(l.At), l.Method, l.DeviceID, l.Address, l.UserAgent)
	if err != nil {
		return dbError(err, "add login record", "", "player not found")
	}
	return nil
}

// LoginRecords returns the player's latest logins, newest first; limit <= 0
// means the default.
func (t *tx) LoginRecords(ctx context.Context, playerID string, limit int) ([]*tandem.LoginRecord, error) {
	if limit <= 0 {
		limit = loginRecordsDefaultLimit
	}
	rows, err := t.tx.Query(ctx, `SELECT player_id, at, method, device_id, address, user_agent FROM player_logins
		WHERE player_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, playerID, limit)
	if err != nil {
		return nil, dbError(err, "list login records", "", "")
	}
	records, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.LoginRecord, error) {
		var l tandem.LoginRecord
		err := r.Scan(&l.PlayerID, scanTime(&l.At), &l.Method, &l.DeviceID, &l.Address, &l.UserAgent)
		return &l, err
	})
	if err != nil {
		return nil, dbError(err, "list login records", "", "")
	}
	return records, nil
}

func (t *tx) DeleteLoginRecords(ctx context.Context, playerID string) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM player_logins WHERE player_id = $1`, playerID); err != nil {
		return dbError(err, "delete login records", "", "")
	}
	return nil
}

func (t *tx) DeleteOldLoginRecords(ctx context.Context, before time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM player_logins WHERE at < $1`, instantArg(before))
	if err != nil {
		return 0, dbError(err, "delete old login records", "", "")
	}
	return int(tag.RowsAffected()), nil
}

// LastUsedRefresh returns the refresh token hash the session used up last
// and when.
func (t *tx) LastUsedRefresh(ctx context.Context, sessionID string) ([]byte, time.Time, error) {
	var (
		hash   []byte
		usedAt time.Time
	)
	err := t.tx.QueryRow(ctx, `
		SELECT hash, used_at FROM player_refresh_used WHERE session_id = $1
		ORDER BY used_at DESC LIMIT 1`, sessionID).Scan(&hash, scanTime(&usedAt))
	if err != nil {
		return nil, time.Time{}, notFound(err, "last used refresh token", "the session used no refresh token")
	}
	return bytesOut(hash), usedAt, nil
}

// DeleteOldUsedRefreshTokens forgets used refresh tokens used before before.
func (t *tx) DeleteOldUsedRefreshTokens(ctx context.Context, before time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `DELETE FROM player_refresh_used WHERE used_at < $1`, instantArg(before))
	if err != nil {
		return 0, dbError(err, "delete old used refresh tokens", "", "")
	}
	return int(tag.RowsAffected()), nil
}

const banColumns = `id, player_id, scope, device_hash, reason, starts_at, ends_at, created_by,
	created_by_name, created_at, lifted_at, lifted_by, lifted_by_name`

func scanBan(row pgx.Row) (*tandem.Ban, error) {
	var (
		b     tandem.Ban
		scope string
	)
	err := row.Scan(&b.ID, &b.PlayerID, &scope, &b.DeviceHash, &b.Reason, scanTime(&b.StartsAt), scanTime(&b.EndsAt),
		&b.CreatedBy, &b.CreatedByName, scanTime(&b.CreatedAt), scanTime(&b.LiftedAt), &b.LiftedBy, &b.LiftedByName)
	if err != nil {
		return nil, err
	}
	b.Scope = tandem.BanScope(scope)
	b.DeviceHash = bytesOut(b.DeviceHash)
	return &b, nil
}

func collectBans(rows pgx.Rows, err error) ([]*tandem.Ban, error) {
	if err != nil {
		return nil, dbError(err, "list bans", "", "")
	}
	bans, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.Ban, error) { return scanBan(r) })
	if err != nil {
		return nil, dbError(err, "list bans", "", "")
	}
	return bans, nil
}

func (t *tx) CreateBan(ctx context.Context, b *tandem.Ban) error {
	err := t.tx.QueryRow(ctx, `INSERT INTO player_bans (player_id, scope, device_hash, reason, starts_at, ends_at,
			created_by, created_by_name, created_at, lifted_at, lifted_by, lifted_by_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
		b.PlayerID, string(b.Scope), nullBytes(b.DeviceHash), b.Reason, instantArg(b.StartsAt), timeArg(b.EndsAt),
		b.CreatedBy, b.CreatedByName, timeArg(b.CreatedAt), timeArg(b.LiftedAt), b.LiftedBy, b.LiftedByName,
	).Scan(&b.ID)
	if err != nil {
		return dbError(err, "create ban", "", "player not found")
	}
	return nil
}

func (t *tx) Ban(ctx context.Context, id int64) (*tandem.Ban, error) {
	b, err := scanBan(t.tx.QueryRow(ctx, `SELECT `+banColumns+` FROM player_bans WHERE id = $1`+t.lockRows, id))
	if err != nil {
		return nil, notFound(err, "read ban", "ban not found")
	}
	return b, nil
}

func (t *tx) UpdateBan(ctx context.Context, b *tandem.Ban) error {
	tag, err := t.tx.Exec(ctx, `UPDATE player_bans SET lifted_at = $2, lifted_by = $3, lifted_by_name = $4
		WHERE id = $1`, b.ID, timeArg(b.LiftedAt), b.LiftedBy, b.LiftedByName)
	if err != nil {
		return dbError(err, "update ban", "", "")
	}
	if tag.RowsAffected() == 0 {
		return tandem.Errorf(tandem.ENotFound, "ban not found")
	}
	return nil
}

// Bans returns every ban of the player, newest first.
func (t *tx) Bans(ctx context.Context, playerID string) ([]*tandem.Ban, error) {
	return collectBans(t.tx.Query(ctx, `SELECT `+banColumns+` FROM player_bans WHERE player_id = $1
		ORDER BY created_at DESC, id DESC`, playerID))
}

// ActiveBans sends a nil deviceHash as NULL, which equals no device ban's
// hash.
func (t *tx) ActiveBans(ctx context.Context, playerID string, deviceHash []byte, now time.Time) ([]*tandem.Ban, error) {
	return collectBans(t.tx.Query(ctx, `SELECT `+banColumns+` FROM player_bans
		WHERE ((scope = 'account' AND player_id = $1) OR (scope = 'device' AND device_hash = $2))
			AND lifted_at IS NULL AND starts_at <= $3 AND (ends_at IS NULL OR ends_at > $3)
		ORDER BY created_at DESC, id DESC`,
		playerID, nullBytes(deviceHash), instantArg(now)))
}

func (t *tx) CreatePlayerNote(ctx context.Context, n *tandem.PlayerNote) error {
	err := t.tx.QueryRow(ctx, `INSERT INTO player_notes (player_id, admin_id, admin_name, text, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		n.PlayerID, n.AdminID, n.AdminName, n.Text, timeArg(n.CreatedAt),
	).Scan(&n.ID)
	if err != nil {
		return dbError(err, "create player note", "", "player not found")
	}
	return nil
}

// PlayerNotes returns the player's notes, newest first.
func (t *tx) PlayerNotes(ctx context.Context, playerID string) ([]*tandem.PlayerNote, error) {
	rows, err := t.tx.Query(ctx, `SELECT id, player_id, admin_id, admin_name, text, created_at FROM player_notes
		WHERE player_id = $1 ORDER BY created_at DESC, id DESC`, playerID)
	if err != nil {
		return nil, dbError(err, "list player notes", "", "")
	}
	notes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tandem.PlayerNote, error) {
		var n tandem.PlayerNote
		err := r.Scan(&n.ID, &n.PlayerID, &n.AdminID, &n.AdminName, &n.Text, scanTime(&n.CreatedAt))
		return &n, err
	})
	if err != nil {
		return nil, dbError(err, "list player notes", "", "")
	}
	return notes, nil
}

func (t *tx) DeletePlayerNotes(ctx context.Context, playerID string) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM player_notes WHERE player_id = $1`, playerID); err != nil {
		return dbError(err, "delete player notes", "", "")
	}
	return nil
}
