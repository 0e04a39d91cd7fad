package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	tandem "github.com/tandemhq/tandem"
)

// Limits of one player search.
const (
	playerSearchDefaultLimit = 50
	playerSearchMaxLimit     = 200
)

// loginRecordsDefaultLimit is how many logins LoginRecords returns when
// asked for none.
const loginRecordsDefaultLimit = 20

// nullText stores "" as NULL, for nullable unique columns such as a
// guest's email, where many rows have none.
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullBlob stores an empty hash as NULL, for nullable BLOB columns. A NULL
// equals nothing, so a nil hash argument matches no row.
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// mmText is how matchmaking properties are stored: a JSON object, "{}"
// when there are none.
func mmText(mm map[string]string) (string, error) {
	if len(mm) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(mm)
	if err != nil {
		return "", fmt.Errorf("sqlite: encode matchmaking properties: %w", err)
	}
	return string(b), nil
}

// mmOf reads properties stored by mmText back, none as nil.
func mmOf(s string) (map[string]string, error) {
	var mm map[string]string
	if err := json.Unmarshal([]byte(s), &mm); err != nil {
		return nil, fmt.Errorf("sqlite: decode matchmaking properties: %w", err)
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

func scanPlayer(row interface{ Scan(...any) error }) (*tandem.PlayerAccount, error) {
	var (
		a                                    tandem.PlayerAccount
		email                                sql.NullString
		mm                                   string
		createdAt, updated, lastLogin, delAt sql.NullInt64
	)
	err := row.Scan(&a.ID, &a.DisplayName, &email, &a.PasswordHash, &a.Locale, &a.AvatarURL, &mm,
		&createdAt, &updated, &lastLogin, &delAt)
	if err != nil {
		return nil, err
	}
	if a.MM, err = mmOf(mm); err != nil {
		return nil, err
	}
	a.Email = email.String
	a.CreatedAt = timeOf(createdAt)
	a.UpdatedAt = timeOf(updated)
	a.LastLoginAt = timeOf(lastLogin)
	a.DeletedAt = timeOf(delAt)
	return &a, nil
}

// playerConflict names the constraint a player write can break: the
// unique id (on create) or the unique email.
func playerConflict(err error, what string) error {
	if constraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return conflict(err, what, "player already exists")
	}
	return conflict(err, what, "email already taken")
}

// CreatePlayer inserts a. A taken email is EConflict.
func (t *tx) CreatePlayer(ctx context.Context, a *tandem.PlayerAccount) error {
	mm, err := mmText(a.MM)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `
		INSERT INTO players (`+playerColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.DisplayName, nullText(a.Email), a.PasswordHash, a.Locale, a.AvatarURL, mm,
		micros(a.CreatedAt), micros(a.UpdatedAt), micros(a.LastLoginAt), micros(a.DeletedAt))
	if err != nil {
		return playerConflict(err, "create player")
	}
	return nil
}

// Player returns the account with the id.
func (t *tx) Player(ctx context.Context, id string) (*tandem.PlayerAccount, error) {
	a, err := scanPlayer(t.tx.QueryRowContext(ctx, `SELECT `+playerColumns+` FROM players WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "player", "player not found")
	}
	return a, nil
}

// PlayerByEmail returns the account with the email, compared exactly: the
// service stores and looks up emails lower-cased.
func (t *tx) PlayerByEmail(ctx context.Context, email string) (*tandem.PlayerAccount, error) {
	a, err := scanPlayer(t.tx.QueryRowContext(ctx, `SELECT `+playerColumns+` FROM players WHERE email = ?`, email))
	if err != nil {
		return nil, notFound(err, "player by email", "player not found")
	}
	return a, nil
}

// UpdatePlayer writes every field of a but ID and CreatedAt.
func (t *tx) UpdatePlayer(ctx context.Context, a *tandem.PlayerAccount) error {
	mm, err := mmText(a.MM)
	if err != nil {
		return err
	}
	res, err := t.tx.ExecContext(ctx, `
		UPDATE players SET display_name = ?, email = ?, password_hash = ?, locale = ?, avatar_url = ?,
			mm = ?, updated_at = ?, last_login_at = ?, deleted_at = ?
		WHERE id = ?`,
		a.DisplayName, nullText(a.Email), a.PasswordHash, a.Locale, a.AvatarURL,
		mm, micros(a.UpdatedAt), micros(a.LastLoginAt), micros(a.DeletedAt), a.ID)
	if err != nil {
		return playerConflict(err, "update player")
	}
	return mustAffect(res, "update player", "player not found")
}

// SearchPlayers returns the accounts f selects, newest first. A query
// matches an id, an email (lower-cased) or a device id exactly, or a part
// of a display name. SQLite's lower() and LIKE fold ASCII letters only, so
// a part of a non-ASCII name matches in its own case.
func (t *tx) SearchPlayers(ctx context.Context, f tandem.PlayerFilter) ([]*tandem.PlayerAccount, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = playerSearchDefaultLimit
	}
	limit = min(limit, playerSearchMaxLimit)
	q := `SELECT ` + playerColumns + ` FROM players`
	var args []any
	if f.Query != "" {
		q += ` WHERE id = ? OR email = ?
			OR lower(display_name) LIKE lower(?) ESCAPE '\'
			OR EXISTS (SELECT 1 FROM player_devices d WHERE d.player_id = players.id AND d.id = ?)`
		args = append(args, f.Query, strings.ToLower(f.Query), "%"+likeEscape(f.Query)+"%", f.Query)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search players: %w", err)
	}
	defer rows.Close()
	var players []*tandem.PlayerAccount
	for rows.Next() {
		a, err := scanPlayer(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: search players: %w", err)
		}
		players = append(players, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: search players: %w", err)
	}
	return players, nil
}

// CountPlayers returns how many accounts are stored, deleted ones
// (tombstones) included.
func (t *tx) CountPlayers(ctx context.Context) (int, error) {
	var n int
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM players`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count players: %w", err)
	}
	return n, nil
}

const deviceColumns = `id, player_id, secret_hash, created_at, last_seen_at`

func scanDevice(row interface{ Scan(...any) error }) (*tandem.PlayerDevice, error) {
	var (
		d                   tandem.PlayerDevice
		createdAt, lastSeen sql.NullInt64
	)
	if err := row.Scan(&d.ID, &d.PlayerID, &d.SecretHash, &createdAt, &lastSeen); err != nil {
		return nil, err
	}
	d.SecretHash = bytesOf(d.SecretHash)
	d.CreatedAt = timeOf(createdAt)
	d.LastSeenAt = timeOf(lastSeen)
	return &d, nil
}

// CreatePlayerDevice inserts d. A device id already stored is EConflict.
func (t *tx) CreatePlayerDevice(ctx context.Context, d *tandem.PlayerDevice) error {
	_, err := t.tx.ExecContext(ctx, `
		INSERT INTO player_devices (`+deviceColumns+`) VALUES (?, ?, ?, ?, ?)`,
		d.ID, d.PlayerID, blob(d.SecretHash), micros(d.CreatedAt), micros(d.LastSeenAt))
	if err != nil {
		if isForeignKey(err) {
			return conflict(err, "create player device", "player does not exist")
		}
		return conflict(err, "create player device", "device already registered")
	}
	return nil
}

// PlayerDevice returns the device with the id.
func (t *tx) PlayerDevice(ctx context.Context, id string) (*tandem.PlayerDevice, error) {
	d, err := scanDevice(t.tx.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM player_devices WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "player device", "device not found")
	}
	return d, nil
}

// PlayerDevices returns the player's devices, oldest first.
func (t *tx) PlayerDevices(ctx context.Context, playerID string) ([]*tandem.PlayerDevice, error) {
	rows, err := t.tx.QueryContext(ctx, `
		SELECT `+deviceColumns+` FROM player_devices WHERE player_id = ? ORDER BY created_at, id`, playerID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: player devices: %w", err)
	}
	defer rows.Close()
	var devices []*tandem.PlayerDevice
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: player devices: %w", err)
		}
		devices = append(devices, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: player devices: %w", err)
	}
	return devices, nil
}

// TouchPlayerDevice sets the device's LastSeenAt.
func (t *tx) TouchPlayerDevice(ctx context.Context, id string, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE player_devices SET last_seen_at = ? WHERE id = ?`, micros(at), id)
	if err != nil {
		return fmt.Errorf("sqlite: touch player device: %w", err)
	}
	return mustAffect(res, "touch player device", "device not found")
}

// DeletePlayerDevices forgets every device of the player.
func (t *tx) DeletePlayerDevices(ctx context.Context, playerID string) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM player_devices WHERE player_id = ?`, playerID); err != nil {
		return fmt.Errorf("sqlite: delete player devices: %w", err)
	}
	return nil
}

const playerSessionColumns = `id, player_id, method, access_hash, access_expires_at, refresh_hash,
	refresh_expires_at, device_hash, address, user_agent, created_at, last_used_at`

func scanPlayerSession(row interface{ Scan(...any) error }) (*tandem.PlayerSession, error) {
	var (
		s                                          tandem.PlayerSession
		accessExp, refreshExp, createdAt, lastUsed sql.NullInt64
	)
	err := row.Scan(&s.ID, &s.PlayerID, &s.Method, &s.AccessHash, &accessExp, &s.RefreshHash,
		&refreshExp, &s.DeviceHash, &s.Address, &s.UserAgent, &createdAt, &lastUsed)
	if err != nil {
		return nil, err
	}
	s.AccessHash = bytesOf(s.AccessHash)
	s.RefreshHash = bytesOf(s.RefreshHash)
	s.DeviceHash = bytesOf(s.DeviceHash)
	s.AccessExpiresAt = timeOf(accessExp)
	s.RefreshExpiresAt = timeOf(refreshExp)
	s.CreatedAt = timeOf(createdAt)
	s.LastUsedAt = timeOf(lastUsed)
	return &s, nil
}

// CreatePlayerSession inserts s.
func (t *tx) CreatePlayerSession(ctx context.Context, s *tandem.PlayerSession) error {
	_, err := t.tx.ExecContext(ctx, `
		INSERT INTO player_sessions (`+playerSessionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.PlayerID, s.Method, blob(s.AccessHash), micros(s.AccessExpiresAt), blob(s.RefreshHash),
		micros(s.RefreshExpiresAt), nullBlob(s.DeviceHash), s.Address, s.UserAgent,
		micros(s.CreatedAt), micros(s.LastUsedAt))
	if err != nil {
		if isForeignKey(err) {
			return conflict(err, "create player session", "player does not exist")
		}
		return conflict(err, "create player session", "session already exists")
	}
	return nil
}

// playerSessionWhere returns the one session cond selects.
func (t *tx) playerSessionWhere(ctx context.Context, what, cond string, args ...any) (*tandem.PlayerSession, error) {
	s, err := scanPlayerSession(t.tx.QueryRowContext(ctx,
		`SELECT `+playerSessionColumns+` FROM player_sessions WHERE `+cond, args...))
	if err != nil {
		return nil, notFound(err, what, "session not found")
	}
	return s, nil
}

// PlayerSessionByAccess returns the session with the access token hash.
func (t *tx) PlayerSessionByAccess(ctx context.Context, hash []byte) (*tandem.PlayerSession, error) {
	return t.playerSessionWhere(ctx, "player session by access", `access_hash = ?`, blob(hash))
}

// PlayerSessionByRefresh returns the session with the refresh token hash.
func (t *tx) PlayerSessionByRefresh(ctx context.Context, hash []byte) (*tandem.PlayerSession, error) {
	return t.playerSessionWhere(ctx, "player session by refresh", `refresh_hash = ?`, blob(hash))
}

// PlayerSessionByUsedRefresh finds the session that already used the
// refresh token hash.
func (t *tx) PlayerSessionByUsedRefresh(ctx context.Context, hash []byte) (*tandem.PlayerSession, error) {
	return t.playerSessionWhere(ctx, "player session by used refresh",
		`id = (SELECT session_id FROM player_refresh_used WHERE hash = ?)`, blob(hash))
}

// RotatePlayerSession writes s's tokens, expiries and LastUsedAt and
// remembers usedRefresh as used by the session; a hash already remembered
// is EConflict.
func (t *tx) RotatePlayerSession(ctx context.Context, s *tandem.PlayerSession, usedRefresh []byte) error {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE player_sessions SET access_hash = ?, access_expires_at = ?, refresh_hash = ?,
			refresh_expires_at = ?, last_used_at = ?
		WHERE id = ?`,
		blob(s.AccessHash), micros(s.AccessExpiresAt), blob(s.RefreshHash),
		micros(s.RefreshExpiresAt), micros(s.LastUsedAt), s.ID)
	if err != nil {
		return conflict(err, "rotate player session", "token already in use")
	}
	if err := mustAffect(res, "rotate player session", "session not found"); err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `
		INSERT INTO player_refresh_used (hash, session_id, used_at) VALUES (?, ?, ?)`,
		blob(usedRefresh), s.ID, micros(s.LastUsedAt))
	if err != nil {
		return conflict(err, "remember used refresh token", "refresh token already used")
	}
	return nil
}

// TouchPlayerSession writes LastUsedAt.
func (t *tx) TouchPlayerSession(ctx context.Context, id string, at time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE player_sessions SET last_used_at = ? WHERE id = ?`, micros(at), id)
	if err != nil {
		return fmt.Errorf("sqlite: touch player session: %w", err)
	}
	return mustAffect(res, "touch player session", "session not found")
}

// PlayerSessions returns the player's sessions, newest first.
func (t *tx) PlayerSessions(ctx context.Context, playerID string) ([]*tandem.PlayerSession, error) {
	rows, err := t.tx.QueryContext(ctx, `
		SELECT `+playerSessionColumns+` FROM player_sessions WHERE player_id = ?
		ORDER BY created_at DESC, id DESC`, playerID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: player sessions: %w", err)
	}
	defer rows.Close()
	var sessions []*tandem.PlayerSession
	for rows.Next() {
		s, err := scanPlayerSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: player sessions: %w", err)
		}
		sessions = append(sessions, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: player sessions: %w", err)
	}
	return sessions, nil
}

// DeletePlayerSession ends one session; its used refresh tokens go with it
// (ON DELETE CASCADE).
func (t *tx) DeletePlayerSession(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM player_sessions WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete player session: %w", err)
	}
	return mustAffect(res, "delete player session", "session not found")
}

// DeletePlayerSessions ends every session of the player.
func (t *tx) DeletePlayerSessions(ctx context.Context, playerID string) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM player_sessions WHERE player_id = ?`, playerID)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete player sessions: %w", err)
	}
	return affected(res, "delete player sessions")
}

// DeleteDeviceSessions ends every session that logged in with the device;
// a nil hash matches none.
func (t *tx) DeleteDeviceSessions(ctx context.Context, deviceHash []byte) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM player_sessions WHERE device_hash = ?`, nullBlob(deviceHash))
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete device sessions: %w", err)
	}
	return affected(res, "delete device sessions")
}

// DeleteExpiredPlayerSessions removes sessions whose refresh token expired
// before now.
func (t *tx) DeleteExpiredPlayerSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM player_sessions WHERE refresh_expires_at < ?`, now.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired player sessions: %w", err)
	}
	return affected(res, "delete expired player sessions")
}

// AddLoginRecord stores one login.
func (t *tx) AddLoginRecord(ctx context.Context, l *tandem.LoginRecord) error {
	_, err := t.tx.ExecContext(ctx, `
		INSERT INTO player_logins (player_id, at, method, device_id, address, user_agent)
		VALUES (?, ?, ?, ?, ?, ?)`,
		l.PlayerID, l.At.UnixMicro(), l.Method, l.DeviceID, l.Address, l.UserAgent)
	if err != nil {
		return conflict(err, "add login record", "player does not exist")
	}
	return nil
}

// LoginRecords returns the player's latest logins, newest first; limit <= 0
// means the default.
func (t *tx) LoginRecords(ctx context.Context, playerID string, limit int) ([]*tandem.LoginRecord, error) {
	if limit <= 0 {
		limit = loginRecordsDefaultLimit
	}
	rows, err := t.tx.QueryContext(ctx, `
		SELECT player_id, at, method, device_id, address, user_agent FROM player_logins
		WHERE player_id = ? ORDER BY at DESC, id DESC LIMIT ?`, playerID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: login records: %w", err)
	}
	defer rows.Close()
	var records []*tandem.LoginRecord
	for rows.Next() {
		var (
			l  tandem.LoginRecord
			at int64
		)
		if err := rows.Scan(&l.PlayerID, &at, &l.Method, &l.DeviceID, &l.Address, &l.UserAgent); err != nil {
			return nil, fmt.Errorf("sqlite: login records: %w", err)
		}
		l.At = time.UnixMicro(at).UTC()
		records = append(records, &l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: login records: %w", err)
	}
	return records, nil
}

// DeleteLoginRecords forgets every login of the player.
func (t *tx) DeleteLoginRecords(ctx context.Context, playerID string) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM player_logins WHERE player_id = ?`, playerID); err != nil {
		return fmt.Errorf("sqlite: delete login records: %w", err)
	}
	return nil
}

// DeleteOldLoginRecords removes records older than before.
func (t *tx) DeleteOldLoginRecords(ctx context.Context, before time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM player_logins WHERE at < ?`, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete old login records: %w", err)
	}
	return affected(res, "delete old login records")
}

// LastUsedRefresh returns the refresh token hash the session used up last
// and when.
func (t *tx) LastUsedRefresh(ctx context.Context, sessionID string) ([]byte, time.Time, error) {
	var (
		hash   []byte
		usedAt sql.NullInt64
	)
	err := t.tx.QueryRowContext(ctx, `
		SELECT hash, used_at FROM player_refresh_used WHERE session_id = ?
		ORDER BY used_at DESC LIMIT 1`, sessionID).Scan(&hash, &usedAt)
	if err != nil {
		return nil, time.Time{}, notFound(err, "last used refresh token", "the session used no refresh token")
	}
	return bytesOf(hash), timeOf(usedAt), nil
}

// DeleteOldUsedRefreshTokens forgets used refresh tokens used before before.
func (t *tx) DeleteOldUsedRefreshTokens(ctx context.Context, before time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM player_refresh_used WHERE used_at < ?`, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete old used refresh tokens: %w", err)
	}
	return affected(res, "delete old used refresh tokens")
}

const banColumns = `id, player_id, scope, device_hash, reason, starts_at, ends_at, created_by,
	created_by_name, created_at, lifted_at, lifted_by, lifted_by_name`

func scanBan(row interface{ Scan(...any) error }) (*tandem.Ban, error) {
	var (
		b                           tandem.Ban
		startsAt                    int64
		endsAt, createdAt, liftedAt sql.NullInt64
	)
	err := row.Scan(&b.ID, &b.PlayerID, &b.Scope, &b.DeviceHash, &b.Reason, &startsAt, &endsAt, &b.CreatedBy,
		&b.CreatedByName, &createdAt, &liftedAt, &b.LiftedBy, &b.LiftedByName)
	if err != nil {
		return nil, err
	}
	b.DeviceHash = bytesOf(b.DeviceHash)
	b.StartsAt = time.UnixMicro(startsAt).UTC()
	b.EndsAt = timeOf(endsAt)
	b.CreatedAt = timeOf(createdAt)
	b.LiftedAt = timeOf(liftedAt)
	return &b, nil
}

func collectBans(rows *sql.Rows, err error) ([]*tandem.Ban, error) {
	if err != nil {
		return nil, fmt.Errorf("sqlite: bans: %w", err)
	}
	defer rows.Close()
	var bans []*tandem.Ban
	for rows.Next() {
		b, err := scanBan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: bans: %w", err)
		}
		bans = append(bans, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: bans: %w", err)
	}
	return bans, nil
}

// CreateBan inserts b and sets b.ID.
func (t *tx) CreateBan(ctx context.Context, b *tandem.Ban) error {
	err := t.tx.QueryRowContext(ctx, `
		INSERT INTO player_bans (player_id, scope, device_hash, reason, starts_at, ends_at, created_by,
			created_by_name, created_at, lifted_at, lifted_by, lifted_by_name)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		b.PlayerID, string(b.Scope), nullBlob(b.DeviceHash), b.Reason, b.StartsAt.UnixMicro(), micros(b.EndsAt),
		b.CreatedBy, b.CreatedByName, micros(b.CreatedAt), micros(b.LiftedAt), b.LiftedBy, b.LiftedByName,
	).Scan(&b.ID)
	if err != nil {
		return conflict(err, "create ban", "player does not exist")
	}
	return nil
}

// Ban returns the ban with the id.
func (t *tx) Ban(ctx context.Context, id int64) (*tandem.Ban, error) {
	b, err := scanBan(t.tx.QueryRowContext(ctx, `SELECT `+banColumns+` FROM player_bans WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "ban", "ban not found")
	}
	return b, nil
}

// UpdateBan writes LiftedAt, LiftedBy and LiftedByName.
func (t *tx) UpdateBan(ctx context.Context, b *tandem.Ban) error {
	res, err := t.tx.ExecContext(ctx, `
		UPDATE player_bans SET lifted_at = ?, lifted_by = ?, lifted_by_name = ? WHERE id = ?`,
		micros(b.LiftedAt), b.LiftedBy, b.LiftedByName, b.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update ban: %w", err)
	}
	return mustAffect(res, "update ban", "ban not found")
}

// Bans returns every ban of the player, newest first.
func (t *tx) Bans(ctx context.Context, playerID string) ([]*tandem.Ban, error) {
	return collectBans(t.tx.QueryContext(ctx, `
		SELECT `+banColumns+` FROM player_bans WHERE player_id = ?
		ORDER BY created_at DESC, id DESC`, playerID))
}

// ActiveBans returns the bans that keep out, at now, the account playerID
// or the device whose id hashes to deviceHash. A nil deviceHash is sent as
// NULL, which equals no device ban's hash.
func (t *tx) ActiveBans(ctx context.Context, playerID string, deviceHash []byte, now time.Time) ([]*tandem.Ban, error) {
	us := now.UnixMicro()
	return collectBans(t.tx.QueryContext(ctx, `
		SELECT `+banColumns+` FROM player_bans
		WHERE ((scope = 'account' AND player_id = ?) OR (scope = 'device' AND device_hash = ?))
			AND lifted_at IS NULL AND starts_at <= ? AND (ends_at IS NULL OR ends_at > ?)
		ORDER BY created_at DESC, id DESC`,
		playerID, nullBlob(deviceHash), us, us))
}

// CreatePlayerNote inserts n and sets n.ID.
func (t *tx) CreatePlayerNote(ctx context.Context, n *tandem.PlayerNote) error {
	err := t.tx.QueryRowContext(ctx, `
		INSERT INTO player_notes (player_id, admin_id, admin_name, text, created_at)
		VALUES (?, ?, ?, ?, ?)
		RETURNING id`,
		n.PlayerID, n.AdminID, n.AdminName, n.Text, micros(n.CreatedAt),
	).Scan(&n.ID)
	if err != nil {
		return conflict(err, "create player note", "player does not exist")
	}
	return nil
}

// PlayerNotes returns the player's notes, newest first.
func (t *tx) PlayerNotes(ctx context.Context, playerID string) ([]*tandem.PlayerNote, error) {
	rows, err := t.tx.QueryContext(ctx, `
		SELECT id, player_id, admin_id, admin_name, text, created_at FROM player_notes
		WHERE player_id = ? ORDER BY created_at DESC, id DESC`, playerID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: player notes: %w", err)
	}
	defer rows.Close()
	var notes []*tandem.PlayerNote
	for rows.Next() {
		var (
			n         tandem.PlayerNote
			createdAt sql.NullInt64
		)
		if err := rows.Scan(&n.ID, &n.PlayerID, &n.AdminID, &n.AdminName, &n.Text, &createdAt); err != nil {
			return nil, fmt.Errorf("sqlite: player notes: %w", err)
		}
		n.CreatedAt = timeOf(createdAt)
		notes = append(notes, &n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: player notes: %w", err)
	}
	return notes, nil
}

// DeletePlayerNotes removes every note on the player.
func (t *tx) DeletePlayerNotes(ctx context.Context, playerID string) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM player_notes WHERE player_id = ?`, playerID); err != nil {
		return fmt.Errorf("sqlite: delete player notes: %w", err)
	}
	return nil
}
