package pgtest_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/pgtest"
	"github.com/tandemhq/tandem/postgres"
)

func connect(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func databaseExists(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`,
		name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestURLGivesAMigratedDatabaseDroppedWhenTheTestEnds(t *testing.T) {
	maintenance := connect(t, base(t))
	var name string
	t.Run("test", func(t *testing.T) {
		conn := connect(t, pgtest.URL(t))
		var roles, head int
		err := conn.QueryRow(t.Context(), `SELECT current_database(), (SELECT count(*) FROM roles),
			(SELECT count(*) FROM audit_head)`).Scan(&name, &roles, &head)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^tandem_t_[0-9a-f]{12}$`).MatchString(name) {
			t.Errorf("database name %q, want tandem_t_ and 12 hex digits", name)
		}
		if roles != 5 || head != 1 {
			t.Errorf("%d roles and %d audit heads, want the migration's 5 and 1", roles, head)
		}
	})
	if name == "" {
		t.FailNow()
	}
	if databaseExists(t, maintenance, name) {
		t.Errorf("database %s is still there after its test ended", name)
	}
}

func TestEachCallGetsADatabaseOfItsOwn(t *testing.T) {
	a, b := connect(t, pgtest.URL(t)), connect(t, pgtest.URL(t))
	if _, err := a.Exec(t.Context(), `INSERT INTO roles (name) VALUES ('only-in-a')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(t.Context(), `SELECT count(*) FROM roles WHERE name = 'only-in-a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("a row written to one database shows in the other")
	}
}

func TestTemplateIsNamedAfterTheMigrationsAndRefusesConnections(t *testing.T) {
	pgtest.URL(t) // builds the template if no test has yet
	tmpl := "tandem_tmpl_" + postgres.MigrationsHash()[:16]
	var isTemplate, allowConn bool
	err := connect(t, base(t)).QueryRow(t.Context(),
		`SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1`, tmpl).Scan(&isTemplate, &allowConn)
	if err != nil {
		t.Fatalf("template %s: %v", tmpl, err)
	}
	if !isTemplate || allowConn {
		t.Errorf("template %s: datistemplate %v, datallowconn %v; want true, false", tmpl, isTemplate, allowConn)
	}
}

func TestOpenGivesAMigratedStore(t *testing.T) {
	status, err := pgtest.Open(t).MigrationStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range status {
		if !m.Applied {
			t.Errorf("migration %s is not applied", m.Name)
		}
	}
}

// recordingTB stops where the real testing.TB would, and records how.
type recordingTB struct {
	testing.TB
	how string
}

type stopped struct{}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.how = "skip: " + fmt.Sprintf(format, args...)
	panic(stopped{})
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.how = "fatal: " + fmt.Sprintf(format, args...)
	panic(stopped{})
}

func stopOf(t *testing.T) string {
	r := &recordingTB{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil && v != (stopped{}) {
				panic(v)
			}
		}()
		pgtest.URL(r)
	}()
	return r.how
}

func TestWithoutPostgreSQLTheTestSkipsButFailsUnderCI(t *testing.T) {
	t.Setenv(pgtest.EnvURL, "")
	t.Setenv("CI", "")
	if got := stopOf(t); !regexp.MustCompile(`^skip: `).MatchString(got) {
		t.Errorf("outside CI: %q, want a skip", got)
	}
	t.Setenv("CI", "true")
	if got := stopOf(t); !regexp.MustCompile(`^fatal: `).MatchString(got) {
		t.Errorf("under CI=true: %q, want a failure", got)
	}
}

// base returns the maintenance URL, or skips (fails under CI) as pgtest does.
func base(t *testing.T) string {
	t.Helper()
	u := os.Getenv(pgtest.EnvURL)
	if u == "" {
		pgtest.URL(t)
	}
	return u
}
