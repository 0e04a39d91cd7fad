package tandem

import (
	"context"
	"time"
)

// Store is the web server's database: sqlite.Store and postgres.Store
// implement it and pass the same storetest suite. A Store only stores:
// permission checks and audit records are service/'s work, done inside the
// transactions the Store runs.
//
// Errors: a missing row is ENotFound, a unique or foreign-key violation is
// EConflict, both as *Error with a message safe to show; anything else is an
// internal error whose text never reaches a client.
type Store interface {
	// Update runs fn in one read-write transaction and commits it if fn
	// returns nil. Write transactions are serialized where they touch the
	// same rows (SQLite: BEGIN IMMEDIATE; PostgreSQL: row locks), so a
	// read-then-write inside fn sees no lost update.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in one read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Lease takes the leases of background jobs (clusterstore.go).
	Lease
	Close() error
}

// Tx is the work a Store can do inside one transaction. Times are stored
// with microsecond precision and come back in UTC.
type Tx interface {
	AdminTx
	RoleTx
	AdminSessionTx
	APIKeyTx
	AuditTx
	RateLimitTx
	PlayerTx
	SigningKeyTx
	ClusterTx
}

// AdminTx stores admins, their recovery codes and their known devices.
type AdminTx interface {
	// CreateAdmin inserts a and sets a.ID. A taken name is EConflict.
	CreateAdmin(ctx context.Context, a *Admin) error
	Admin(ctx context.Context, id int64) (*Admin, error)
	AdminByName(ctx context.Context, name string) (*Admin, error)
	// Admins returns every admin by id.
	Admins(ctx context.Context) ([]*Admin, error)
	CountAdmins(ctx context.Context) (int, error)
	// UpdateAdmin writes every field of a but ID and CreatedAt.
	UpdateAdmin(ctx context.Context, a *Admin) error

	// ReplaceRecoveryCodes drops the admin's recovery codes and stores
	// these SHA-256 hashes instead.
	ReplaceRecoveryCodes(ctx context.Context, adminID int64, hashes [][]byte) error
	// UseRecoveryCode marks an unused code used and reports whether there
	// was one: each code works once.
	UseRecoveryCode(ctx context.Context, adminID int64, hash []byte, at time.Time) (bool, error)
	// UnusedRecoveryCodes counts the admin's codes still usable.
	UnusedRecoveryCodes(ctx context.Context, adminID int64) (int, error)

	// AddDevice remembers a browser the admin logged in from (the SHA-256
	// of its device cookie), so login throttling spares it.
	AddDevice(ctx context.Context, adminID int64, hash []byte, at time.Time) error
	HasDevice(ctx context.Context, adminID int64, hash []byte) (bool, error)
}

// RoleTx stores roles.
type RoleTx interface {
	// CreateRole inserts r and sets r.ID. A taken name is EConflict.
	CreateRole(ctx context.Context, r *Role) error
	Role(ctx context.Context, id int64) (*Role, error)
	RoleByName(ctx context.Context, name string) (*Role, error)
	// Roles returns every role by id.
	Roles(ctx context.Context) ([]*Role, error)
	// UpdateRole writes Name, Description, Permissions and UpdatedAt.
	UpdateRole(ctx context.Context, r *Role) error
	// DeleteRole removes a role; one still held by an admin or API key is
	// EConflict.
	DeleteRole(ctx context.Context, id int64) error
}

// AdminSessionTx stores admin sessions by the hash of their token.
type AdminSessionTx interface {
	CreateAdminSession(ctx context.Context, s *AdminSession) error
	AdminSession(ctx context.Context, tokenHash []byte) (*AdminSession, error)
	// UpdateAdminSession writes LastSeenAt, MFAPassed and ReauthAt.
	UpdateAdminSession(ctx context.Context, s *AdminSession) error
	DeleteAdminSession(ctx context.Context, tokenHash []byte) error
	// DeleteAdminSessions ends every session of the admin but the one
	// whose hash is keep (nil keeps none) and returns how many ended.
	DeleteAdminSessions(ctx context.Context, adminID int64, keep []byte) (int, error)
	// DeleteExpiredAdminSessions removes sessions whose ExpiresAt is before
	// now or whose LastSeenAt is before idleBefore.
	DeleteExpiredAdminSessions(ctx context.Context, now, idleBefore time.Time) (int, error)
}

// APIKeyTx stores admin API keys.
type APIKeyTx interface {
	// CreateAPIKey inserts k and sets k.ID.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	APIKey(ctx context.Context, id int64) (*APIKey, error)
	APIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)
	// APIKeys returns every key, revoked ones too, by id.
	APIKeys(ctx context.Context) ([]*APIKey, error)
	// UpdateAPIKey writes LastUsedAt and RevokedAt.
	UpdateAPIKey(ctx context.Context, k *APIKey) error
}

// AuditTx stores the audit chain and its checkpoints. The audit table is
// append-only in both databases: an UPDATE or DELETE of a record is refused
// by the database itself.
type AuditTx interface {
	// LockAuditHead locks the chain head until the transaction ends and
	// returns the last record's Seq and Hash (0 and nil for an empty chain).
	// Taking it as the transaction's last step keeps concurrent writers
	// from forking the chain while holding the lock as briefly as possible.
	LockAuditHead(ctx context.Context) (seq int64, hash []byte, err error)
	// AppendAudit inserts r (Seq, PrevHash and Hash already set) and moves
	// the head to it. It must follow LockAuditHead in the same transaction.
	AppendAudit(ctx context.Context, r *AuditRecord) error
	// AuditRecords returns the records f selects, newest first.
	AuditRecords(ctx context.Context, f AuditFilter) ([]*AuditRecord, error)
	// AuditRange returns up to limit records with Seq >= from, oldest first.
	AuditRange(ctx context.Context, from int64, limit int) ([]*AuditRecord, error)
	// AddAuditCheckpoint stores a signed checkpoint (append-only as well).
	AddAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error
	// AuditCheckpoints returns every checkpoint by Seq.
	AuditCheckpoints(ctx context.Context) ([]*AuditCheckpoint, error)
	// LastAuditCheckpoint returns the checkpoint with the highest Seq, or
	// ENotFound.
	LastAuditCheckpoint(ctx context.Context) (*AuditCheckpoint, error)
}

// RateLimitTx keeps fixed-window counters in the database, where every web
// replica sees them.
type RateLimitTx interface {
	// HitRateLimit adds one to key's counter for the window containing now
	// (windows start at multiples of window since the Unix epoch) and
	// returns the new count.
	HitRateLimit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	// RateLimitCount returns key's count in the window containing now.
	RateLimitCount(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	// ResetRateLimit forgets key's counters.
	ResetRateLimit(ctx context.Context, key string) error
	// DeleteOldRateLimits removes counters of windows that ended before t.
	DeleteOldRateLimits(ctx context.Context, t time.Time) (int, error)
}

// Migration is one embedded schema migration and whether the database has
// it, as `tandem migrate status` shows it.
type Migration struct {
	Version   int64
	Name      string // the file name
	Applied   bool
	AppliedAt time.Time // zero if not applied
}
