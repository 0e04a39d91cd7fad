package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/postgres"
	"github.com/tandemhq/tandem/sqlite"
)

// database is a Store that can also migrate itself: sqlite.Store and
// postgres.Store both are.
type database interface {
	tandem.Store
	MigrateUp(ctx context.Context) ([]tandem.Migration, error)
	MigrationStatus(ctx context.Context) ([]tandem.Migration, error)
}

// openDatabase opens the database a --db value names:
// sqlite:PATH or postgres://… (postgresql:// too).
func openDatabase(ctx context.Context, dsn string, log *slog.Logger) (database, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, usageError{fmt.Errorf("--db sqlite: needs a file path, as in sqlite:./tandem-data/tandem.db")}
		}
		return sqlite.Open(ctx, sqlite.Config{Path: path, Logger: log})
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, postgres.Config{URL: dsn, Logger: log})
	case dsn == "":
		return nil, usageError{fmt.Errorf("--db is required: sqlite:PATH or postgres://…")}
	default:
		return nil, usageError{fmt.Errorf("--db must start with sqlite: or postgres://")}
	}
}

// checkMigrated refuses to serve a database that lacks migrations this
// binary knows: run `tandem migrate up` first. Migrations the binary does
// not know (a newer release ran them) are fine: they only expand the schema.
func checkMigrated(ctx context.Context, db database) error {
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	var pending []string
	for _, m := range status {
		if !m.Applied {
			pending = append(pending, m.Name)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("the database lacks migrations %s: run `tandem migrate up` first", strings.Join(pending, ", "))
	}
	return nil
}
