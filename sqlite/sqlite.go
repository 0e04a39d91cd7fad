// Package sqlite owns the SQLite implementation of tandem.Store: opening the
// database file, its embedded migrations, and every SQL statement the web
// server runs against SQLite. It only stores; permission checks and audit
// records are service/'s work.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	tandem "github.com/tandemhq/tandem"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultBusyTimeout is how long a statement waits for another connection's
// lock before failing with SQLITE_BUSY.
const DefaultBusyTimeout = 5 * time.Second

// Config says which database file to open.
type Config struct {
	// Path is the database file; its directory is created if missing.
	Path string
	// BusyTimeout defaults to DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
}

// Store is a tandem.Store on one SQLite file. Writes go through a pool of
// one connection whose transactions begin IMMEDIATE, so they are serialized
// and never fail to upgrade a read lock; reads go through a separate pool of
// query-only connections that WAL lets run beside the writer.
type Store struct {
	write  *sql.DB
	read   *sql.DB
	logger *slog.Logger
	leases leases
}

var _ tandem.Store = (*Store)(nil)

// Open opens (creating if needed) the database file and checks it answers.
// It does not migrate: call MigrateUp.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: no database path")
	}
	// The driver cuts the DSN at '?', so such a path would open another file.
	if strings.ContainsRune(cfg.Path, '?') {
		return nil, fmt.Errorf("sqlite: database path %q contains '?'", cfg.Path)
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = DefaultBusyTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create database directory: %w", err)
	}

	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1&_synchronous=NORMAL", cfg.BusyTimeout.Milliseconds())
	write, err := sql.Open("sqlite", cfg.Path+"?"+common+"&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// The write connection switches the file to WAL; open it first so the
	// read connections find it in WAL mode.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}

	read, err := sql.Open("sqlite", cfg.Path+"?"+common+"&_query_only=1")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	conns := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(conns)
	read.SetMaxIdleConns(conns)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	return &Store{write: write, read: read, logger: logger}, nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// Update runs fn in a write transaction (BEGIN IMMEDIATE) and commits it if
// fn returns nil; fn's error comes back unchanged.
func (s *Store) Update(ctx context.Context, fn func(tandem.Tx) error) error {
	return runTx(ctx, s.write, fn)
}

// View runs fn in a read transaction on a query-only connection.
func (s *Store) View(ctx context.Context, fn func(tandem.Tx) error) error {
	return runTx(ctx, s.read, fn)
}

func runTx(ctx context.Context, db *sql.DB, fn func(tandem.Tx) error) error {
	sqlTx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	// A no-op after Commit; on an error or a panic in fn it undoes the work.
	defer sqlTx.Rollback()
	if err := fn(&tx{tx: sqlTx}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// tx implements tandem.Tx on one database transaction. Its methods live in
// one file per table group.
type tx struct {
	tx *sql.Tx
}

// MigrateUp applies the pending embedded migrations and returns them. The
// single write connection runs each migration in an IMMEDIATE transaction.
// goose has no lock for SQLite, so two processes migrating the same file at
// once may fail (one of them, harmlessly) rather than wait.
func (s *Store) MigrateUp(ctx context.Context) ([]tandem.Migration, error) {
	p, err := s.provider()
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrate: %w", err)
	}
	applied := make([]tandem.Migration, 0, len(results))
	for _, r := range results {
		applied = append(applied, tandem.Migration{
			Version: r.Source.Version,
			Name:    filepath.Base(r.Source.Path),
			Applied: true,
		})
	}
	if len(applied) == 0 {
		return applied, nil
	}
	// goose's results carry no time; the status has it.
	status, err := s.MigrationStatus(ctx)
	if err != nil {
		return nil, err
	}
	for i := range applied {
		for _, m := range status {
			if m.Version == applied[i].Version {
				applied[i].AppliedAt = m.AppliedAt
			}
		}
	}
	return applied, nil
}

// MigrationStatus lists every embedded migration and whether the database
// has it.
func (s *Store) MigrationStatus(ctx context.Context) ([]tandem.Migration, error) {
	p, err := s.provider()
	if err != nil {
		return nil, err
	}
	status, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migration status: %w", err)
	}
	out := make([]tandem.Migration, 0, len(status))
	for _, st := range status {
		m := tandem.Migration{
			Version: st.Source.Version,
			Name:    filepath.Base(st.Source.Path),
			Applied: st.State == goose.StateApplied,
		}
		if m.Applied {
			m.AppliedAt = st.AppliedAt.UTC()
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Store) provider() (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.write, fsys,
		goose.WithSlog(s.logger),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	return p, nil
}

// constraint reports whether err is the SQLite constraint violation code
// (an extended code such as SQLITE_CONSTRAINT_UNIQUE).
func constraint(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == code
}

// conflict turns a unique, primary-key or foreign-key violation (or an
// append-only trigger refusing an insert onto a taken position) into an
// EConflict carrying msg; other errors are wrapped with what failed.
func conflict(err error, what, msg string) error {
	switch {
	case constraint(err, sqlite3.SQLITE_CONSTRAINT_TRIGGER),
		constraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE),
		constraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY),
		constraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return tandem.Errorf(tandem.EConflict, "%s", msg)
	default:
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
}

func isForeignKey(err error) bool {
	return constraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY)
}

// notFound turns sql.ErrNoRows into an ENotFound carrying msg.
func notFound(err error, what, msg string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return tandem.Errorf(tandem.ENotFound, "%s", msg)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// mustAffect returns an ENotFound carrying msg when res changed no row.
func mustAffect(res sql.Result, what, msg string) error {
	n, err := affected(res, what)
	if err != nil {
		return err
	}
	if n == 0 {
		return tandem.Errorf(tandem.ENotFound, "%s", msg)
	}
	return nil
}

// affected returns how many rows res changed.
func affected(res sql.Result, what string) (int, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return int(n), nil
}

// micros is how a time is stored: unix microseconds, NULL for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeOf reads a time stored by micros back, in UTC.
func timeOf(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// blob stores nil as an empty BLOB, for NOT NULL columns.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// bytesOf reads a BLOB back, an empty one as nil.
func bytesOf(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
