package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/token"
)

// devKeyFile is the dev signing key inside --data-dir. `tandem token` and
// `tandem loadtest` sign with it, for trying a node without logging in; the
// node of `tandem dev --dev-tokens` accepts its tokens beside the web
// server's.
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
	if err := c.Keys.check(); err != nil {
		return usageError{err}
	}
	if err := c.NATS.check(); err != nil {
		return usageError{err}
	}
	if err := c.Cluster.check(c.NATS); err != nil {
		return usageError{err}
	}
	if err := checkNATSListen(c.NATSListen); err != nil {
		return usageError{err}
	}
	// The dev key is trusted only when asked for: without --dev-tokens the
	// node takes exactly the tokens the web server issues.
	var devSigner *token.Signer
	if c.DevTokens {
		if devSigner, err = loadDevSigner(c.DataDir); err != nil {
			return fmt.Errorf("dev key: %w", err)
		}
	}
	if c.Web.AuditKey == "" {
		c.Web.AuditKey = filepath.Join(c.DataDir, devAuditKeyFile)
	}
	auditKey, err := token.LoadOrCreateKeyFile(c.Web.AuditKey)
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	if c.Web.KeyEncryptionKey == "" {
		c.Web.KeyEncryptionKey = filepath.Join(c.DataDir, devKEKFile)
	}
	kek, err := loadOrCreateKEKFile(c.Web.KeyEncryptionKey)
	if err != nil {
		return err
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
	// The bus: an embedded NATS server, one connection for the web server
	// and one for the node, as separate processes would have.
	emb, err := startEmbeddedNATS(c.DataDir, c.NATSListen, log)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	defer emb.Shutdown()
	webBus, err := connectBus(ctx, c.NATS, emb, "web", log)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	defer webBus.Close()
	nodeBus, err := connectBus(ctx, c.NATS, emb, "realtime dev", log)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	defer nodeBus.Close()

	// Both listen before either starts: logins tell clients the node's URL.
	webLn, err := net.Listen("tcp", c.WebListen)
	if err != nil {
		return errors.Join(fmt.Errorf("web listen: %w", err), db.Close())
	}
	rtLn, err := net.Listen("tcp", c.RealtimeListen)
	if err != nil {
		return errors.Join(fmt.Errorf("realtime listen: %w", err), webLn.Close(), db.Close())
	}
	if c.Web.RealtimeURL == "" {
		c.Web.RealtimeURL = "ws://" + rtLn.Addr().String() + "/ws"
	}
	// One --cors-origins for both; "*" only opens WebSockets to any origin.
	c.Web.CORSOrigins = slices.DeleteFunc(slices.Clone(c.Node.CORSOrigins), func(o string) bool { return o == "*" })
	c.Web.NodeTTL = c.NATS.NodeTTL
	c.Web.Play = true
	web, err := startWeb(webLn, db, c.Web, webKeys{audit: auditKey, kek: kek}, webBus, log)
	if err != nil {
		return errors.Join(err, webLn.Close(), rtLn.Close(), db.Close())
	}
	// The dev web origin may open WebSockets, beside the configured ones.
	c.Node.CORSOrigins = append(c.Node.CORSOrigins, strings.TrimSuffix(web.url, "/"))
	keys := remoteKeys(devKeySource(web.svc.SigningPublicKeys, devSigner), c.Keys, log)
	node, err := startRealtime(rtLn, "dev", c.Node, keys, keys.Run, opts, log, &nodeCluster{bus: nodeBus, cfg: c.Cluster})
	if err != nil {
		return errors.Join(err, web.close())
	}
	firstAdmin, err := devFirstAdmin(ctx, web.svc, db)
	if err != nil {
		return errors.Join(err, node.close(), web.close())
	}
	if err := ensurePlayQueue(ctx, web.svc, db); err != nil {
		return errors.Join(err, node.close(), web.close())
	}
	devTokens := ""
	if devSigner != nil {
		tok, err := devSigner.Issue(tandem.Player{ID: "dev-player", Name: "Dev Player"}, time.Now(), tandem.MaxTokenLifetime)
		if err != nil {
			return errors.Join(err, node.close(), web.close())
		}
		devTokens = fmt.Sprintf(`token for player dev-player (valid 10 minutes):
%s
More tokens, one per player: go run ./cmd/tandem token --player alice
`, tok)
	}
	fmt.Fprintf(stdio.Stdout, `tandem dev is running.
web:      %s/admin
play:     %s/play
realtime: %s
%s%s%s`, web.url, web.url, node.URL(), natsLine(emb), firstAdmin, devTokens)

	return runDevServers(ctx, web, node, stdio)
}

// runDevServers runs the web server and the node until ctx ends or either
// stops on its own; then the other stops too, rather than serve half a
// dev cluster (logins handing out the URL of a node that is gone).
func runDevServers(ctx context.Context, web *webServer, node *realtimeNode, stdio Stdio) error {
	return runDevPair(ctx, web.run, node.run, func() bool { return node.drainCommanded }, stdio)
}

// runDevPair is runDevServers on the servers' run functions. When ctx ends
// the node drains first and the web server stops only once it returned:
// the node's key source reads the web server's database, and its last
// events (sessions closed by the drain) go to the stream meanwhile, where
// the web server's consumer finds them now or at the next start.
func runDevPair(ctx context.Context, runWeb, runNode func(context.Context) error, drainCommanded func() bool, stdio Stdio) error {
	nodeCtx, stopNode := context.WithCancel(ctx)
	defer stopNode()
	// Not ctx's child: Ctrl-C reaches the web server through the node.
	webCtx, stopWeb := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWeb()
	webDone := make(chan error, 1)
	go func() {
		err := runWeb(webCtx)
		if webCtx.Err() == nil {
			fmt.Fprintf(stdio.Stderr, "tandem dev: the web server stopped (%v); tandem dev stops\n", err)
			stopNode()
		}
		webDone <- err
	}()
	nodeErr := runNode(nodeCtx)
	if nodeCtx.Err() == nil {
		if drainCommanded() && nodeErr == nil {
			fmt.Fprintln(stdio.Stderr, "tandem dev: the node drained (a drain command); tandem dev stops")
		} else {
			fmt.Fprintf(stdio.Stderr, "tandem dev: the node stopped (%v); tandem dev stops\n", nodeErr)
		}
	}
	stopWeb()
	return errors.Join(nodeErr, <-webDone)
}

// checkNATSListen refuses a --nats-listen other than this machine's: the
// embedded server has no authentication, and whoever reaches it could
// publish token keys (forge tokens), send commands and read presence.
func checkNATSListen(listen string) error {
	if listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--nats-listen %q is not host:port: %w", listen, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("--nats-listen %q is not a loopback address (127.0.0.1, ::1 or localhost): "+
			"the embedded NATS server has no authentication, and anyone reaching it could forge tokens and send commands; "+
			"for a cluster across machines run nats-server with credentials, tandem web --nats and tandem realtime --nats", listen)
	}
	return nil
}

// natsLine tells where the embedded NATS server listens, if it does.
func natsLine(emb interface{ ClientURL() string }) string {
	if u := emb.ClientURL(); u != "" {
		return fmt.Sprintf("nats:     %s\n", u)
	}
	return ""
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

// devPlayQueue is the matchmaking queue /play's "Quick match" uses:
// free-for-all arena matches of 2 to 8 players, made with fewer than 8
// once the oldest ticket has waited 2 s.
func devPlayQueue() tandem.MatchQueue {
	return tandem.MatchQueue{Name: "quick", RoomType: "arena", MinPlayers: 2, MaxPlayers: 8, FillWaitMS: 2000}
}

// ensurePlayQueue creates devPlayQueue, as the system, when there is no
// queue of its name; one there already (an operator's edit) is kept.
func ensurePlayQueue(ctx context.Context, svc *service.Service, db database) error {
	q := devPlayQueue()
	err := db.View(ctx, func(tx tandem.Tx) error { _, err := tx.MatchQueue(ctx, q.Name); return err })
	switch {
	case err == nil:
		return nil
	case tandem.ErrorCodeOf(err) != tandem.ENotFound:
		return fmt.Errorf("queue %s: %w", q.Name, err)
	}
	if _, err := svc.CreateQueue(ctx, service.SystemActor(), q); err != nil {
		return fmt.Errorf("queue %s: %w", q.Name, err)
	}
	return nil
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
