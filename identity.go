package tandem

import (
	"context"
	"time"
)

// PlayerAccount is a player as the web server stores it. Its ID is what realtime
// tokens carry as sub; everything else is personal data that account
// deletion erases, keeping the row as a tombstone so ledgers and the audit
// log still name a player that existed.
type PlayerAccount struct {
	// ID is a UUID (version 7), chosen by the server.
	ID          string
	DisplayName string
	// Email is lower-cased and unique; "" for a guest.
	Email string
	// PasswordHash is an argon2id PHC string; "" for an account without a
	// password (a guest).
	PasswordHash string
	Locale       string // a BCP 47 tag such as "en" or "pt-BR"; "" if unset
	AvatarURL    string
	// MM holds the matchmaking properties realtime tokens carry (skill,
	// region, platform and game-defined ones). Admins and the game's
	// servers set them; never the player.
	MM          map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	LastLoginAt time.Time // zero before the first login
	// DeletedAt is when the account was deleted; zero while it exists.
	DeletedAt time.Time
}

// Deleted reports whether the account was deleted (only its id remains).
func (a *PlayerAccount) Deleted() bool { return !a.DeletedAt.IsZero() }

// PlayerDevice is a device a player logs in from as a guest: the device id the
// client chose and the SHA-256 of the 128-bit secret it generated.
type PlayerDevice struct {
	ID         string // the client's device id, unique across players
	PlayerID   string
	SecretHash []byte
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// The ways a player logs in.
const (
	LoginGuest    = "guest"    // device id and secret
	LoginPassword = "password" // email and password
)

// PlayerSession is one logged-in client of a player: an access token for
// the player API and a refresh token, each stored as its SHA-256. The
// refresh tokens a session has used form its family: presenting one of
// them again revokes the session.
type PlayerSession struct {
	ID               string // random, shown to the player to tell sessions apart
	PlayerID         string
	Method           string // LoginGuest or LoginPassword
	AccessHash       []byte
	AccessExpiresAt  time.Time
	RefreshHash      []byte
	RefreshExpiresAt time.Time
	// DeviceHash is the SHA-256 of the device id the session logged in
	// with (nil if none), so a device ban also stops its refreshes.
	DeviceHash []byte
	Address    string
	UserAgent  string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// LoginRecord is one successful login, kept for the admin's player page.
type LoginRecord struct {
	PlayerID  string
	At        time.Time
	Method    string
	DeviceID  string // guest logins; "" otherwise
	Address   string
	UserAgent string
}

// BanScope says what a ban covers.
type BanScope string

// The ban scopes.
const (
	BanAccount BanScope = "account" // the player's account, however it logs in
	BanDevice  BanScope = "device"  // one device, whichever account uses it
)

// Ban keeps a player (or a device) out from StartsAt until EndsAt.
type Ban struct {
	ID       int64
	PlayerID string
	Scope    BanScope
	// DeviceHash is the SHA-256 of the banned device id (BanDevice only).
	// Only the hash is kept, so the ban outlives the account's deletion
	// without keeping the device id.
	DeviceHash []byte
	// Reason is shown to the player when a login is refused.
	Reason   string
	StartsAt time.Time
	EndsAt   time.Time // zero: permanent
	// CreatedBy and CreatedByName name the admin (0 and the actor's name
	// for an API key or the CLI).
	CreatedBy     int64
	CreatedByName string
	CreatedAt     time.Time
	// LiftedAt is when the ban was lifted early; zero if it was not.
	LiftedAt     time.Time
	LiftedBy     int64
	LiftedByName string
}

// ActiveAt reports whether the ban keeps the player out at t.
func (b *Ban) ActiveAt(t time.Time) bool {
	return !t.Before(b.StartsAt) && (b.EndsAt.IsZero() || t.Before(b.EndsAt)) && b.LiftedAt.IsZero()
}

// PlayerNote is an admin's note on a player's page.
type PlayerNote struct {
	ID        int64
	PlayerID  string
	AdminID   int64
	AdminName string
	Text      string
	CreatedAt time.Time
}

// SigningKey is one Ed25519 key the web server signs realtime tokens with.
// The private key is stored encrypted with the key encryption key from
// configuration; the public key is published while the key is valid.
type SigningKey struct {
	ID        string // the kid: token.KeyID of the public key
	PublicKey []byte
	// PrivateKeyEnc is the sealed private key (see service for the format).
	PrivateKeyEnc []byte
	CreatedAt     time.Time
	// RetiredAt is when a newer key took over signing; zero while this one
	// signs. A retired key still verifies until ExpiresAt.
	RetiredAt time.Time
	ExpiresAt time.Time // zero while signing
}

// PlayerFilter selects accounts for the admin's player search.
type PlayerFilter struct {
	// Query matches an id or a device id exactly, an email exactly
	// (case-insensitive), or a part of a display name. "" matches all.
	Query string
	Limit int // at most this many, newest first (default 50)
}

// PlayerTx stores player accounts, their devices, sessions, logins, bans and notes.
type PlayerTx interface {
	// CreatePlayer inserts a (ID set by the caller). A taken email is
	// EConflict.
	CreatePlayer(ctx context.Context, a *PlayerAccount) error
	Player(ctx context.Context, id string) (*PlayerAccount, error)
	PlayerByEmail(ctx context.Context, email string) (*PlayerAccount, error)
	// UpdatePlayer writes every field of a but ID and CreatedAt. A taken
	// email is EConflict.
	UpdatePlayer(ctx context.Context, a *PlayerAccount) error
	SearchPlayers(ctx context.Context, f PlayerFilter) ([]*PlayerAccount, error)
	CountPlayers(ctx context.Context) (int, error)

	// CreatePlayerDevice inserts d. A device id already stored is EConflict.
	CreatePlayerDevice(ctx context.Context, d *PlayerDevice) error
	PlayerDevice(ctx context.Context, id string) (*PlayerDevice, error)
	PlayerDevices(ctx context.Context, playerID string) ([]*PlayerDevice, error)
	// TouchPlayerDevice sets the device's LastSeenAt.
	TouchPlayerDevice(ctx context.Context, id string, at time.Time) error
	DeletePlayerDevices(ctx context.Context, playerID string) error

	CreatePlayerSession(ctx context.Context, s *PlayerSession) error
	PlayerSessionByAccess(ctx context.Context, hash []byte) (*PlayerSession, error)
	PlayerSessionByRefresh(ctx context.Context, hash []byte) (*PlayerSession, error)
	// PlayerSessionByUsedRefresh finds the session that already used the
	// refresh token hash (ENotFound if none did).
	PlayerSessionByUsedRefresh(ctx context.Context, hash []byte) (*PlayerSession, error)
	// LastUsedRefresh returns the refresh token hash the session used up
	// last and when (ENotFound if it used none).
	LastUsedRefresh(ctx context.Context, sessionID string) ([]byte, time.Time, error)
	// RotatePlayerSession writes s's tokens, expiries and LastUsedAt and
	// remembers usedRefresh as used by the session.
	RotatePlayerSession(ctx context.Context, s *PlayerSession, usedRefresh []byte) error
	// TouchPlayerSession writes LastUsedAt.
	TouchPlayerSession(ctx context.Context, id string, at time.Time) error
	PlayerSessions(ctx context.Context, playerID string) ([]*PlayerSession, error)
	// DeletePlayerSession ends one session (and forgets its used tokens).
	DeletePlayerSession(ctx context.Context, id string) error
	// DeletePlayerSessions ends every session of the player and returns
	// how many ended.
	DeletePlayerSessions(ctx context.Context, playerID string) (int, error)
	// DeleteDeviceSessions ends every session that logged in with the
	// device whose id hashes to deviceHash.
	DeleteDeviceSessions(ctx context.Context, deviceHash []byte) (int, error)
	// DeleteExpiredPlayerSessions removes sessions whose refresh token
	// expired before now.
	DeleteExpiredPlayerSessions(ctx context.Context, now time.Time) (int, error)
	// DeleteOldUsedRefreshTokens forgets used refresh tokens used before
	// before: by then they would have expired anyway.
	DeleteOldUsedRefreshTokens(ctx context.Context, before time.Time) (int, error)

	AddLoginRecord(ctx context.Context, l *LoginRecord) error
	// LoginRecords returns the player's latest logins, newest first.
	LoginRecords(ctx context.Context, playerID string, limit int) ([]*LoginRecord, error)
	DeleteLoginRecords(ctx context.Context, playerID string) error
	// DeleteOldLoginRecords removes records older than before.
	DeleteOldLoginRecords(ctx context.Context, before time.Time) (int, error)

	// CreateBan inserts b and sets b.ID.
	CreateBan(ctx context.Context, b *Ban) error
	Ban(ctx context.Context, id int64) (*Ban, error)
	// UpdateBan writes LiftedAt, LiftedBy and LiftedByName.
	UpdateBan(ctx context.Context, b *Ban) error
	// Bans returns every ban of the player, newest first.
	Bans(ctx context.Context, playerID string) ([]*Ban, error)
	// ActiveBans returns the bans that keep out, at now, the account
	// playerID or the device whose id hashes to deviceHash (nil: no device).
	ActiveBans(ctx context.Context, playerID string, deviceHash []byte, now time.Time) ([]*Ban, error)

	// CreatePlayerNote inserts n and sets n.ID.
	CreatePlayerNote(ctx context.Context, n *PlayerNote) error
	// PlayerNotes returns the player's notes, newest first.
	PlayerNotes(ctx context.Context, playerID string) ([]*PlayerNote, error)
	DeletePlayerNotes(ctx context.Context, playerID string) error
}

// SigningKeyTx stores realtime token signing keys.
type SigningKeyTx interface {
	// LockSigningKeys serializes key rotation across web replicas until
	// the transaction ends.
	LockSigningKeys(ctx context.Context) error
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// SigningKeys returns every stored key, newest first.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// RetireSigningKey writes k's RetiredAt and ExpiresAt.
	RetireSigningKey(ctx context.Context, k *SigningKey) error
	// DeleteExpiredSigningKeys removes retired keys whose ExpiresAt is
	// before now.
	DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int, error)
}
