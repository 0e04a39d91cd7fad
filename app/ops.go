package app

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"strings"
	"text/tabwriter"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/token"
)

// verb splits `tandem <command> <verb> [flags]` (the verb may also follow
// the flags) and checks it is one of verbs.
func verb(f *flagSet, args []string, env Env, verbs ...string) (string, error) {
	var v string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		v, args = args[0], args[1:]
	}
	if err := f.Parse(args, env); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", usageError{err}
	}
	rest := f.Args()
	if v == "" && len(rest) > 0 {
		v, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))}
	}
	for _, ok := range verbs {
		if v == ok {
			return v, nil
		}
	}
	return "", usageError{fmt.Errorf("say %s", strings.Join(verbs, " or "))}
}

// migrateConfig is the configuration of `tandem migrate`.
type migrateConfig struct{ DB string }

func migrateFlags(c *migrateConfig, stderr io.Writer) *flagSet {
	f := newFlagSet("migrate", stderr)
	f.summary = "tandem migrate up|status: applies the embedded schema migrations or lists them (on PostgreSQL under a lock, so several processes may run it at once)."
	registerDBFlag(f, &c.DB)
	return f
}

func runMigrate(ctx context.Context, args []string, env Env, stdio Stdio, _ Options) error {
	var c migrateConfig
	v, err := verb(migrateFlags(&c, stdio.Stderr), args, env, "up", "status")
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, c.DB, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	if v == "up" {
		applied, err := db.MigrateUp(ctx)
		if err != nil {
			return err
		}
		for _, m := range applied {
			fmt.Fprintf(stdio.Stdout, "applied %s\n", m.Name)
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdio.Stdout, "the database is up to date")
		}
		return nil
	}
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdio.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
	for _, m := range status {
		at := "pending"
		if m.Applied {
			at = m.AppliedAt.Format("2006-01-02 15:04:05Z07:00")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.Name, at)
	}
	return tw.Flush()
}

// adminConfig is the configuration of `tandem admin`.
type adminConfig struct {
	DB              string
	Name            string
	Role            string
	PasswordStdin   bool
	AuditKey        string
	CheckpointEvery int
}

func adminFlags(c *adminConfig, stderr io.Writer) *flagSet {
	f := newFlagSet("admin", stderr)
	f.summary = "tandem admin create: makes an admin (the first one, or one for a locked-out team) and prints its password."
	registerDBFlag(f, &c.DB)
	f.String(&c.Name, "admin-name", "", "the new admin's name, which is also their login")
	f.String(&c.Role, "role", tandem.RoleOwner, "name of the admin's role")
	f.Bool(&c.PasswordStdin, "password-stdin", false,
		"read the password from the first line of standard input (tandem admin create generates one without it)")
	registerAuditKeyFlag(f, &c.AuditKey)
	registerCheckpointEveryFlag(f, &c.CheckpointEvery)
	return f
}

func runAdmin(ctx context.Context, args []string, env Env, stdio Stdio, _ Options) error {
	var c adminConfig
	if _, err := verb(adminFlags(&c, stdio.Stderr), args, env, "create"); err != nil {
		return err
	}
	if c.Name == "" {
		return usageError{errors.New("--admin-name is required")}
	}
	if c.AuditKey == "" {
		return usageError{errors.New("--audit-key is required: the new admin's audit record may be one that needs a checkpoint")}
	}
	key, err := token.LoadKeyFile(c.AuditKey)
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	password := newPassword()
	if c.PasswordStdin {
		if password, err = readPasswordLine(stdio.Stdin); err != nil {
			return err
		}
	}
	db, err := openDatabase(ctx, c.DB, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := checkMigrated(ctx, db); err != nil {
		return err
	}
	svc, err := service.New(service.Config{Store: db, AuditKey: key, CheckpointEvery: int64(c.CheckpointEvery)})
	if err != nil {
		return err
	}
	a, err := createAdmin(ctx, svc, service.CLIActor(osUser()), c.Name, c.Role, password)
	if err != nil {
		return err
	}
	// Sign the head now, so the record is covered whatever the server's
	// --audit-checkpoint-every is.
	if err := svc.Checkpoint(ctx); err != nil {
		return fmt.Errorf("audit checkpoint: %w", err)
	}
	fmt.Fprintf(stdio.Stdout, "created admin %q (id %d, role %s)\n", a.Name, a.ID, c.Role)
	if !c.PasswordStdin {
		fmt.Fprintf(stdio.Stdout, "password: %s\n", password)
	}
	return nil
}

// createAdmin creates an admin with the role of that name.
func createAdmin(ctx context.Context, svc *service.Service, actor *service.Actor, name, roleName, password string) (*tandem.Admin, error) {
	roles, err := svc.Roles(ctx, actor)
	if err != nil {
		return nil, err
	}
	var roleID int64
	for _, r := range roles {
		if r.Name == roleName {
			roleID = r.ID
		}
	}
	if roleID == 0 {
		return nil, usageError{fmt.Errorf("no role named %q", roleName)}
	}
	a, err := svc.CreateAdmin(ctx, actor, service.NewAdmin{Name: name, Password: password, RoleID: roleID})
	if e := (*tandem.Error)(nil); errors.As(err, &e) && len(e.Fields) > 0 {
		var msgs []string
		for _, f := range e.Fields {
			msgs = append(msgs, f.Field+" "+f.Message)
		}
		return nil, usageError{errors.New(strings.Join(msgs, "; "))}
	}
	return a, err
}

// newPassword returns a generated password: 128 random bits.
func newPassword() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

// auditConfig is the configuration of `tandem audit`.
type auditConfig struct {
	DB              string
	AuditKey        string
	CheckpointEvery int
	MinRecords      int
}

func auditFlags(c *auditConfig, stderr io.Writer) *flagSet {
	f := newFlagSet("audit", stderr)
	f.summary = "tandem audit verify: checks the audit log's hash chain and signed checkpoints; exits 1 and names the first broken record, or a truncation, if any."
	registerDBFlag(f, &c.DB)
	registerAuditKeyFlag(f, &c.AuditKey)
	registerCheckpointEveryFlag(f, &c.CheckpointEvery)
	f.Int(&c.MinRecords, "min-records", 0,
		"the seq of the last checkpoint the web server logged (\"audit checkpoint\" lines): fewer records means the log was cut back")
	return f
}

func runAudit(ctx context.Context, args []string, env Env, stdio Stdio, _ Options) error {
	var c auditConfig
	if _, err := verb(auditFlags(&c, stdio.Stderr), args, env, "verify"); err != nil {
		return err
	}
	if c.AuditKey == "" {
		return usageError{errors.New("--audit-key is required: checkpoints are verified with it")}
	}
	pub, err := loadAuditPublicKey(c.AuditKey)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, c.DB, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := service.VerifyAudit(ctx, db, pub, int64(c.CheckpointEvery), int64(c.MinRecords))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Stdout, "%d records, %d valid checkpoints; records 1 to %d are covered by a signed checkpoint\n",
		rep.Records, rep.Checkpoints, rep.Covered)
	if rep.OK() {
		fmt.Fprintln(stdio.Stdout, "ok")
		return nil
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdio.Stdout, "BROKEN: "+p)
	}
	return errors.New("the audit log does not verify")
}

// loadAuditPublicKey reads a private key file (the web server's) or a
// public key PEM.
func loadAuditPublicKey(path string) (ed25519.PublicKey, error) {
	if key, err := token.LoadKeyFile(path); err == nil {
		return key.Public().(ed25519.PublicKey), nil
	}
	pubs, err := token.LoadPublicKeyFiles(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	for _, pub := range pubs {
		return pub, nil
	}
	return nil, fmt.Errorf("audit key %s: no key", path)
}

// readPasswordLine reads a password from the first line of r.
func readPasswordLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
