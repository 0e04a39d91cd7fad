// Package postgres owns Tandem's PostgreSQL store: a pgx connection pool
// implementing tandem.Store, its embedded goose migrations and every SQL
// statement the web server runs against PostgreSQL. It only stores;
// permission checks and audit records are service/'s work.
package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/tandemhq/tandem"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Config configures a Store.
type Config struct {
	// URL is a PostgreSQL connection URL or keyword/value string.
	URL string
	// MaxConns caps the pool; 0 keeps pgx's default.
	MaxConns int32
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
	// LeaseCheck is how often the connection holding a job lease is
	// checked, so a lease lost with its connection stops its job (default 1s).
	LeaseCheck time.Duration
}

// Store is the PostgreSQL tandem.Store.
type Store struct {
	pool       *pgxpool.Pool
	logger     *slog.Logger
	leaseCheck time.Duration
}

var _ tandem.Store = (*Store)(nil)

// Open connects to the database and pings it. It does not migrate: MigrateUp
// does, so a server never changes a schema it was not asked to.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseCheck <= 0 {
		cfg.LeaseCheck = defaultLeaseCheck
	}
	return &Store{pool: pool, logger: logger, leaseCheck: cfg.LeaseCheck}, nil
}

// Close closes every connection of the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Update runs fn in one read-committed transaction. Rows fn reads one at a
// time are locked (FOR NO KEY UPDATE) until the end, so a read-then-write
// loses no concurrent update; the audit head is locked by LockAuditHead.
func (s *Store) Update(ctx context.Context, fn func(tandem.Tx) error) error {
	return s.run(ctx, pgx.TxOptions{}, " FOR NO KEY UPDATE", fn)
}

// View runs fn in one read-only transaction.
func (s *Store) View(ctx context.Context, fn func(tandem.Tx) error) error {
	return s.run(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly}, "", fn)
}

func (s *Store) run(ctx context.Context, opts pgx.TxOptions, lockRows string, fn func(tandem.Tx) error) error {
	ptx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	// Rolling back a committed transaction is a no-op; a cancelled ctx must
	// not keep the rollback from returning the connection clean.
	defer func() { _ = ptx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(&tx{tx: ptx, lockRows: lockRows}); err != nil {
		return err
	}
	if err := ptx.Commit(ctx); err != nil {
		return dbError(err, "commit", "", "")
	}
	return nil
}

// tx implements tandem.Tx on one pgx transaction.
type tx struct {
	tx pgx.Tx
	// lockRows is appended to single-row reads: " FOR NO KEY UPDATE" in
	// Update (which still lets foreign keys to the row be checked), "" in
	// View, where locking is not allowed.
	lockRows string
}

// MigrationsHash returns the SHA-256 (hex) of the embedded migration files'
// names and contents, so a test helper can tell a template built from
// other migrations.
func MigrationsHash() string {
	h := sha256.New()
	err := fs.WalkDir(migrationFiles, "migrations", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := migrationFiles.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		// The files are compiled in; failing to read them is a build bug.
		panic(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// MigrateUp applies every pending migration and returns them. goose's
// PostgreSQL session lock (an advisory lock) makes concurrent migrators
// wait for each other.
func (s *Store) MigrateUp(ctx context.Context) ([]tandem.Migration, error) {
	var applied []tandem.Migration
	err := s.withProvider(ctx, func(p *goose.Provider) error {
		results, err := p.Up(ctx)
		if err != nil {
			return err
		}
		if len(results) == 0 {
			return nil
		}
		status, err := p.Status(ctx)
		if err != nil {
			return err
		}
		for _, r := range results {
			for _, st := range status {
				if st.Source.Version == r.Source.Version {
					applied = append(applied, migrationOf(st))
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate up: %w", err)
	}
	return applied, nil
}

// MigrationStatus lists every embedded migration and whether it is applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]tandem.Migration, error) {
	var out []tandem.Migration
	err := s.withProvider(ctx, func(p *goose.Provider) error {
		status, err := p.Status(ctx)
		if err != nil {
			return err
		}
		for _, st := range status {
			out = append(out, migrationOf(st))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: migration status: %w", err)
	}
	return out, nil
}

func migrationOf(st *goose.MigrationStatus) tandem.Migration {
	m := tandem.Migration{
		Version: st.Source.Version,
		Name:    path.Base(st.Source.Path),
		Applied: st.State == goose.StateApplied,
	}
	if m.Applied {
		m.AppliedAt = st.AppliedAt.UTC()
	}
	return m
}

// withProvider runs fn with a goose provider on a database/sql handle of its
// own, closed afterwards: the advisory lock is session-scoped, so it must
// never outlive the migration on a pooled connection.
func (s *Store) withProvider(ctx context.Context, fn func(*goose.Provider) error) (err error) {
	db := stdlib.OpenDB(*s.pool.Config().ConnConfig.Copy())
	defer func() { err = errors.Join(err, db.Close()) }()
	// Poll for the lock every second (goose's default is every 5) for up
	// to 10 minutes: a second migrator waits for the first, not forever.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
	if err != nil {
		return err
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.logger),
		goose.WithVerbose(true),
	)
	if err != nil {
		return err
	}
	return fn(p)
}

// PostgreSQL error codes the store turns into tandem errors.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// dbError turns a unique or foreign-key violation into an EConflict with a
// message safe to show (unique or foreignKey; "" picks a generic one) and
// wraps any other failure with what was being done.
func dbError(err error, doing, unique, foreignKey string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation:
			if unique == "" {
				unique = "it already exists"
			}
			return tandem.Errorf(tandem.EConflict, "%s", unique)
		case codeForeignKeyViolation:
			if foreignKey == "" {
				foreignKey = "it refers to something that does not exist, or is still referred to"
			}
			return tandem.Errorf(tandem.EConflict, "%s", foreignKey)
		}
	}
	return fmt.Errorf("postgres: %s: %w", doing, err)
}

// notFound returns ENotFound with msg for pgx.ErrNoRows and dbError
// otherwise.
func notFound(err error, doing, msg string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return tandem.Errorf(tandem.ENotFound, "%s", msg)
	}
	return dbError(err, doing, "", "")
}

// timeArg is how a time is written: microseconds in UTC, NULL for zero.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

// timeDst scans a nullable timestamptz into *dst: zero for NULL, UTC
// otherwise.
type timeDst struct{ dst *time.Time }

func scanTime(dst *time.Time) *timeDst { return &timeDst{dst} }

func (d *timeDst) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid || v.InfinityModifier != pgtype.Finite {
		*d.dst = time.Time{}
		return nil
	}
	*d.dst = v.Time.UTC()
	return nil
}

// bytesArg is how bytes are written to NOT NULL columns: nil as empty.
func bytesArg(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// bytesOut is how bytes are returned: empty as nil.
func bytesOut(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// micros returns t as unix microseconds, 0 for a zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
