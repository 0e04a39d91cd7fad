package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/token"
)

// devKeyFile is the dev signing key inside --data-dir. The web server will
// issue tokens itself; until then `tandem dev` and `tandem token` sign with
// this key and the node verifies with its public half.
const devKeyFile = "dev-signing-key.pem"

func loadDevSigner(dataDir string) (*token.Signer, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	return token.LoadOrCreateDevKey(filepath.Join(dataDir, devKeyFile))
}

// devAuditKeyFile and devDatabaseFile live in --data-dir.
const (
	devAuditKeyFile = "audit-key.pem"
	devDatabaseFile = "tandem.db"
)

func runDev(ctx context.Context, args []string, env Env, stdio Stdio, opts Options) error {
	var c devConfig
	if err := parse(devFlags(&c, stdio.Stderr), args, env); err != nil {
		return err
	}
	log, err := observe.NewLogger(stdio.Stderr, c.Node.LogLevel)
	if err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	signer, err := loadDevSigner(c.DataDir)
	if err != nil {
		return fmt.Errorf("dev key: %w", err)
	}
	keys := token.NewKeySet(map[string]ed25519.PublicKey{signer.KeyID(): signer.PublicKey()})
	if c.Web.AuditKey == "" {
		c.Web.AuditKey = filepath.Join(c.DataDir, devAuditKeyFile)
	}
	auditKey, err := token.LoadOrCreateKeyFile(c.Web.AuditKey)
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	if c.Web.DB == "" {
		c.Web.DB = "sqlite:" + filepath.Join(c.DataDir, devDatabaseFile)
	}
	db, err := openDatabase(ctx, c.Web.DB, log)
	if err != nil {
		return err
	}
	if _, err := db.MigrateUp(ctx); err != nil {
		return errors.Join(fmt.Errorf("migrate: %w", err), db.Close())
	}

	webLn, err := net.Listen("tcp", c.WebListen)
	if err != nil {
		return errors.Join(fmt.Errorf("web listen: %w", err), db.Close())
	}
	web, err := startWeb(webLn, db, c.Web, auditKey, log)
	if err != nil {
		return errors.Join(err, webLn.Close(), db.Close())
	}
	// The dev web origin may open WebSockets, beside the configured ones.
	c.Node.CORSOrigins = append(c.Node.CORSOrigins, strings.TrimSuffix(web.url, "/"))
	node, err := startRealtime(c.RealtimeListen, "dev", c.Node, keys, opts, log)
	if err != nil {
		return errors.Join(err, web.close())
	}
	firstAdmin, err := devFirstAdmin(ctx, web.svc, db)
	if err != nil {
		return errors.Join(err, node.close(), web.close())
	}
	tok, err := signer.Issue(tandem.Player{ID: "dev-player", Name: "Dev Player"}, time.Now(), tandem.MaxTokenLifetime)
	if err != nil {
		return errors.Join(err, node.close(), web.close())
	}
	fmt.Fprintf(stdio.Stdout, `tandem dev is running.
web:      %s/admin
realtime: %s
%stoken for player dev-player (valid 10 minutes):
%s
More tokens, one per player: go run ./cmd/tandem token --player alice
`, web.url, node.URL(), firstAdmin, tok)

	webDone := make(chan error, 1)
	go func() { webDone <- web.run(ctx) }()
	runErr := node.run(ctx)
	return errors.Join(runErr, <-webDone)
}

// devFirstAdmin creates the first admin of an empty database, with a random
// password, and returns the lines that tell how to log in ("" when admins
// exist already: no default credentials, ever).
func devFirstAdmin(ctx context.Context, svc *service.Service, db database) (string, error) {
	var n int
	if err := db.View(ctx, func(tx tandem.Tx) (err error) { n, err = tx.CountAdmins(ctx); return err }); err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	password := newPassword()
	if _, err := createAdmin(ctx, svc, service.SystemActor(), "admin", tandem.RoleOwner, password); err != nil {
		return "", fmt.Errorf("first admin: %w", err)
	}
	return fmt.Sprintf("admin:    log in as %q with password %s (shown once; an owner enrols an authenticator app at first login)\n", "admin", password), nil
}

func runToken(_ context.Context, args []string, env Env, stdio Stdio, _ Options) error {
	var c tokenConfig
	if err := parse(tokenFlags(&c, stdio.Stderr), args, env); err != nil {
		return err
	}
	if c.PublicKey {
		signer, err := loadDevSigner(c.DataDir)
		if err != nil {
			return fmt.Errorf("dev key: %w", err)
		}
		pem, err := token.MarshalPublicKeyPEM(signer.PublicKey())
		if err != nil {
			return err
		}
		_, err = stdio.Stdout.Write(pem)
		return err
	}
	if c.Player == "" {
		return usageError{errors.New("--player is required")}
	}
	if c.TTL <= 0 || c.TTL > tandem.MaxTokenLifetime {
		return usageError{fmt.Errorf("--ttl must be in (0, %s]", tandem.MaxTokenLifetime)}
	}
	signer, err := loadDevSigner(c.DataDir)
	if err != nil {
		return fmt.Errorf("dev key: %w", err)
	}
	tok, err := signer.Issue(tandem.Player{ID: c.Player, Name: c.Name}, time.Now(), c.TTL)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Stdout, tok)
	return nil
}
