package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/admin"
	"github.com/tandemhq/tandem/observe"
	"github.com/tandemhq/tandem/play"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/token"
	"github.com/tandemhq/tandem/web"
)

// webConfig is how the web server runs; `tandem web` and the web side of
// `tandem dev` share it.
type webConfig struct {
	DB                      string
	PublicURL               string
	TrustedProxies          []string
	AuditKey                string
	CheckpointEvery         int
	CheckpointInterval      time.Duration
	SessionIdle             time.Duration
	SessionLifetime         time.Duration
	ReauthWindow            time.Duration
	LoginWindow             time.Duration
	LoginFailuresPerAddress int
	LoginFailuresPerAccount int
	PasswordWorkers         int
	PasswordQueue           int
	ShutdownTimeout         time.Duration

	// Players and their tokens.
	KeyEncryptionKey     string
	RealtimeURL          string
	CORSOrigins          []string // registered with the node's flag in tandem dev
	RealtimeTokenTTL     time.Duration
	PlayerAccessTTL      time.Duration
	PlayerRefreshTTL     time.Duration
	TokenKeyRotation     time.Duration
	PlayerLimitWindow    time.Duration
	PlayerLimitAddress   int
	PlayerLimitDevice    int
	PlayerLimitAccount   int
	PlayerLoginRetention time.Duration

	// The cluster.
	CommandGiveUp    time.Duration
	ClusterRetention time.Duration
	NodeTTL          time.Duration // from --node-ttl, registered with the NATS flags

	// Play serves the browser demo at /play (tandem dev).
	Play bool
}

// registerWebFlags registers the web server's flags, shared by `tandem web`
// and `tandem dev`.
func registerWebFlags(f *flagSet, c *webConfig) {
	registerDBFlag(f, &c.DB)
	f.String(&c.PublicURL, "public-url", "",
		"URL browsers reach the web server at; https:// makes cookies Secure with the __Host- prefix (empty: http://<listen address>)")
	f.StringList(&c.TrustedProxies, "trusted-proxies", nil,
		"addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For is believed for the client address")
	registerAuditKeyFlag(f, &c.AuditKey)
	registerCheckpointEveryFlag(f, &c.CheckpointEvery)
	f.Duration(&c.CheckpointInterval, "audit-checkpoint-interval", time.Minute,
		"how often the web server signs an audit checkpoint (when records were added since the last one) and sweeps expired sessions and login counters")
	f.Duration(&c.SessionIdle, "session-idle", 30*time.Minute,
		"an admin session unused this long ends")
	f.Duration(&c.SessionLifetime, "session-lifetime", 12*time.Hour,
		"an admin session ends this long after login, used or not")
	f.Duration(&c.ReauthWindow, "reauth-window", 5*time.Minute,
		"how long after confirming their password an admin may replace their MFA, change roles, give an admin another role or password, and create or revoke API keys")
	f.Duration(&c.LoginWindow, "login-window", 15*time.Minute,
		"window of the failed-login counters")
	f.Int(&c.LoginFailuresPerAddress, "login-failures-per-address", 20,
		"failed logins from one client address within --login-window before that address must wait")
	f.Int(&c.LoginFailuresPerAccount, "login-failures-per-account", 10,
		"failed logins for one account from browsers it never logged in from, within --login-window, before such browsers must wait (known browsers still log in)")
	f.Int(&c.PasswordWorkers, "password-workers", 0,
		"password hashes computed at once (0: one per CPU)")
	f.Int(&c.PasswordQueue, "password-queue", 0,
		"password checks waiting for a worker before more are refused with 429 (0: 4 per worker)")
	f.Duration(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second,
		"on SIGTERM, how long requests in flight may take to finish")

	f.String(&c.KeyEncryptionKey, "key-encryption-key", "",
		"file holding 32 random bytes (64 hex characters) that encrypt the token signing keys in the database and key the "+
			"rate-limit counters; every replica needs the same file (tandem dev: empty means <data-dir>/key-encryption-key)")
	f.String(&c.RealtimeURL, "realtime-url", "",
		"WebSocket URL of the realtime server that login answers tell clients to connect to (tandem dev: its own node)")
	f.Duration(&c.RealtimeTokenTTL, "realtime-token-ttl", tandem.MaxTokenLifetime,
		"lifetime of the realtime tokens login and refresh hand out (whole seconds, at most 10m)")
	f.Duration(&c.PlayerAccessTTL, "player-access-ttl", 15*time.Minute,
		"lifetime of a player's access token for the player API; a refresh gives a new one")
	f.Duration(&c.PlayerRefreshTTL, "player-refresh-ttl", 720*time.Hour,
		"lifetime of a player's refresh token; each refresh gives a new one, so a player who comes back within it stays logged in")
	f.Duration(&c.TokenKeyRotation, "token-key-rotation", 24*time.Hour,
		"how long a token signing key signs before a new one takes over; the old one stays published for the tokens it signed")
	f.Duration(&c.PlayerLimitWindow, "player-limit-window", time.Minute,
		"window of the player login rate limits (guest, register, login and refresh calls)")
	f.Int(&c.PlayerLimitAddress, "player-limit-per-address", 60,
		"player login, register and email-link calls (and failed refreshes) from one client address within --player-limit-window; more get 429 with Retry-After")
	f.Int(&c.PlayerLimitDevice, "player-limit-per-device", 10,
		"failed player logins naming one device id (wrong secrets; wrong passwords of an email login naming it) from one address within --player-limit-window")
	f.Int(&c.PlayerLimitAccount, "player-limit-per-account", 10,
		"failed password logins for one email (spared for devices the account used before), and refreshes plus email links of one player, within --player-limit-window")
	f.Duration(&c.PlayerLoginRetention, "player-login-retention", 90*24*time.Hour,
		"how long records of player logins (time, address, user agent) are kept for the admin's player page")
	f.Duration(&c.CommandGiveUp, "command-give-up", 10*time.Minute,
		"a command to a realtime node (kick, notice, close or lock a room, drain) not acknowledged by its node this long after an operator gave it is marked failed (it is retried until then)")
	f.Duration(&c.ClusterRetention, "cluster-retention", 30*24*time.Hour,
		"how long the cluster's history is kept: node events, finished commands, closed realtime sessions and matches older than this are deleted")
}

// registerCORSFlag registers --cors-origins: in tandem dev one flag serves
// the player API and the realtime node's WebSockets.
func registerCORSFlag(f *flagSet, p *[]string) {
	f.StringList(p, "cors-origins", nil,
		"browser origins (scheme://host[:port]) of games allowed to use the player API and to open WebSockets; "+
			"a request from any other origin gets 403 (* lets any origin open WebSockets; the player API takes exact origins only)")
}

func registerDBFlag(f *flagSet, p *string) {
	f.String(p, "db", "",
		"database: sqlite:PATH or postgres://user@host/db (tandem dev: empty means sqlite:<data-dir>/tandem.db)")
}

func registerAuditKeyFlag(f *flagSet, p *string) {
	f.String(p, "audit-key", "",
		"file of the PEM Ed25519 private key that signs audit checkpoints, kept out of the database "+
			"(tandem dev: empty means <data-dir>/audit-key.pem; tandem audit verify also takes its public half)")
}

func registerCheckpointEveryFlag(f *flagSet, p *int) {
	f.Int(p, "audit-checkpoint-every", 1000,
		"a signed audit checkpoint goes with every N-th audit record; tandem audit verify expects one at each multiple")
}

func registerWebListenFlag(f *flagSet, p *string) {
	f.String(p, "web-listen", "127.0.0.1:7700",
		"address of the web server: the admin UI and its API (host:port; port 0 picks a free one)")
}

// check refuses values the server cannot run with: a zero interval would
// stop the maintenance ticker, a zero limit would refuse every login.
func (c *webConfig) check() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--audit-checkpoint-interval", c.CheckpointInterval}, {"--session-idle", c.SessionIdle},
		{"--session-lifetime", c.SessionLifetime}, {"--reauth-window", c.ReauthWindow},
		{"--login-window", c.LoginWindow}, {"--shutdown-timeout", c.ShutdownTimeout},
		{"--realtime-token-ttl", c.RealtimeTokenTTL}, {"--player-access-ttl", c.PlayerAccessTTL},
		{"--player-refresh-ttl", c.PlayerRefreshTTL}, {"--token-key-rotation", c.TokenKeyRotation},
		{"--player-limit-window", c.PlayerLimitWindow}, {"--player-login-retention", c.PlayerLoginRetention},
		{"--command-give-up", c.CommandGiveUp}, {"--cluster-retention", c.ClusterRetention},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s must be positive, not %s", d.flag, d.v)
		}
	}
	for _, n := range []struct {
		flag string
		v    int
	}{
		{"--audit-checkpoint-every", c.CheckpointEvery}, {"--login-failures-per-address", c.LoginFailuresPerAddress},
		{"--login-failures-per-account", c.LoginFailuresPerAccount},
		{"--player-limit-per-address", c.PlayerLimitAddress}, {"--player-limit-per-device", c.PlayerLimitDevice},
		{"--player-limit-per-account", c.PlayerLimitAccount},
	} {
		if n.v <= 0 {
			return fmt.Errorf("%s must be positive, not %d", n.flag, n.v)
		}
	}
	if c.PasswordWorkers < 0 || c.PasswordQueue < 0 {
		return errors.New("--password-workers and --password-queue must not be negative")
	}
	if c.RealtimeTokenTTL > tandem.MaxTokenLifetime || c.RealtimeTokenTTL%time.Second != 0 {
		return fmt.Errorf("--realtime-token-ttl must be whole seconds up to %s, not %s", tandem.MaxTokenLifetime, c.RealtimeTokenTTL)
	}
	if c.RealtimeURL != "" {
		if u, err := url.Parse(c.RealtimeURL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("--realtime-url %q is not a ws:// or wss:// URL", c.RealtimeURL)
		}
	}
	return nil
}

// webServer is a running web server: the service, its HTTP server and its
// background jobs.
type webServer struct {
	db       database
	svc      *service.Service
	srv      *http.Server
	ln       net.Listener
	url      string
	serveErr chan error
	stopJobs context.CancelFunc
	jobs     sync.WaitGroup
	shutdown time.Duration
}

// startWeb opens nothing itself: db is migrated and owned by the caller
// until close, which closes it too.
// cluster, if not nil, is the bus to the realtime nodes.
func startWeb(ln net.Listener, db database, c webConfig, keys webKeys, cluster tandem.Cluster, log *slog.Logger) (*webServer, error) {
	if err := c.check(); err != nil {
		return nil, usageError{err}
	}
	proxies, err := parsePrefixes(c.TrustedProxies)
	if err != nil {
		return nil, usageError{fmt.Errorf("--trusted-proxies: %w", err)}
	}
	publicURL := c.PublicURL
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	if u, err := url.Parse(publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("--public-url %q is not an http:// or https:// URL", c.PublicURL)}
	}
	matchmaking, _ := cluster.(tandem.Matchmaking) // the bus, which holds the queues and tickets too
	svc, err := service.New(service.Config{
		Store:                   db,
		Logger:                  log,
		AuditKey:                keys.audit,
		CheckpointEvery:         int64(c.CheckpointEvery),
		SessionIdle:             c.SessionIdle,
		SessionLifetime:         c.SessionLifetime,
		ReauthWindow:            c.ReauthWindow,
		LoginWindow:             c.LoginWindow,
		LoginFailuresPerAddress: c.LoginFailuresPerAddress,
		LoginFailuresPerAccount: c.LoginFailuresPerAccount,
		Passwords:               service.PasswordConfig{Workers: c.PasswordWorkers, Queue: c.PasswordQueue},
		Players: service.PlayerConfig{
			KeyEncryptionKey: keys.kek,
			RealtimeTokenTTL: c.RealtimeTokenTTL,
			AccessTTL:        c.PlayerAccessTTL,
			RefreshTTL:       c.PlayerRefreshTTL,
			KeyRotation:      c.TokenKeyRotation,
			RealtimeURL:      c.RealtimeURL,
			LimitWindow:      c.PlayerLimitWindow,
			LimitPerAddress:  c.PlayerLimitAddress,
			LimitPerDevice:   c.PlayerLimitDevice,
			LimitPerAccount:  c.PlayerLimitAccount,
			LoginRetention:   c.PlayerLoginRetention,
		},
		Cluster:     cluster,
		ClusterJobs: service.ClusterConfig{CommandGiveUp: c.CommandGiveUp, NodeTTL: c.NodeTTL, Retention: c.ClusterRetention},
		Matchmaking: matchmaking,
	})
	if err != nil {
		return nil, err
	}
	cookies := web.CookiesFor(publicURL)
	ui := admin.Config{Service: svc, Cookies: cookies, Logger: log}
	rs := routes(svc, cookies, ui)
	if c.Play {
		pr, err := playRoutes(c.RealtimeURL)
		if err != nil {
			return nil, err
		}
		rs = append(rs, pr...)
	}
	handler, err := web.New(web.Config{
		Service:        svc,
		Logger:         log,
		PublicURL:      publicURL,
		TrustedProxies: proxies,
		CORSOrigins:    c.CORSOrigins,
		Routes:         rs,
		HTMLError:      admin.HTMLError(ui),
	})
	if err != nil {
		return nil, err
	}
	jobsCtx, stopJobs := context.WithCancel(context.Background())
	w := &webServer{
		db:  db,
		svc: svc,
		srv: &http.Server{
			Handler: handler.Handler(),
			// Bodies are small (64 KiB at most) and answers quick: a client
			// holding a connection longer is slow or hostile.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:       ln,
		url:      publicURL,
		serveErr: make(chan error, 1),
		stopJobs: stopJobs,
		shutdown: c.ShutdownTimeout,
	}
	// A signing key before the first login, so realtime nodes find it
	// published from the start.
	if err := svc.RotateSigningKeys(context.Background()); err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	if err := svc.CheckSigningKey(context.Background()); err != nil {
		return nil, fmt.Errorf("token signing key: %w", err)
	}
	w.jobs.Go(func() { svc.RunMaintenance(jobsCtx, c.CheckpointInterval) })
	w.jobs.Go(func() { svc.RunClusterJobs(jobsCtx) })
	go func() { w.serveErr <- w.srv.Serve(ln) }()
	return w, nil
}

// webKeys are the web server's keys from configuration.
type webKeys struct {
	audit ed25519.PrivateKey // signs audit checkpoints
	kek   []byte             // seals token signing keys
}

// routes is every route of the web server: the player API, the admin JSON
// API and the admin UI.
func routes(svc *service.Service, cookies web.Cookies, ui admin.Config) []web.Route {
	rs := web.PlayerAPIRoutes(svc)
	rs = append(rs, web.APIRoutes(svc, cookies)...)
	return append(rs, admin.Routes(ui)...)
}

// playRoutes serve the browser demo. They are tandem dev's only, outside
// routes (the table docs/api.md lists): the demo plays in the dev
// cluster's "quick" queue, which only tandem dev makes.
func playRoutes(realtimeURL string) ([]web.Route, error) {
	h, err := play.New(play.Config{RealtimeURL: realtimeURL})
	if err != nil {
		return nil, err
	}
	return []web.Route{
		{Method: http.MethodGet, Path: play.Path, Access: web.Public, Summary: "the browser demo", Handler: h.ServeHTTP},
		{Method: http.MethodGet, Path: play.Path + "/{file}", Access: web.Public, Summary: "the browser demo's script and style", Handler: h.ServeHTTP},
	}, nil
}

// run serves until ctx ends or the server fails, then closes.
func (w *webServer) run(ctx context.Context) error {
	select {
	case err := <-w.serveErr:
		w.serveErr <- err
	case <-ctx.Done():
	}
	return w.close()
}

// close stops accepting, lets requests in flight finish within the shutdown
// timeout, stops the background jobs and closes the database.
func (w *webServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), w.shutdown)
	defer cancel()
	err := w.srv.Shutdown(ctx)
	if serveErr := <-w.serveErr; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("web server: %w", serveErr))
	}
	w.stopJobs()
	w.jobs.Wait()
	// A last checkpoint, so a clean stop leaves the whole log covered; with
	// its own time, whatever the drain used up.
	cpCtx, cancelCP := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelCP()
	if cpErr := w.svc.Checkpoint(cpCtx); cpErr != nil {
		err = errors.Join(err, fmt.Errorf("audit checkpoint: %w", cpErr))
	}
	return errors.Join(err, w.db.Close())
}

func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// webCmdConfig is the configuration of `tandem web`.
type webCmdConfig struct {
	Listen   string
	LogLevel string
	Web      webConfig
	NATS     natsConfig
}

func webFlags(c *webCmdConfig, stderr io.Writer) *flagSet {
	f := newFlagSet("web", stderr)
	f.summary = "Runs the web operations server: the admin UI and the admin JSON API, on the database of --db."
	registerWebListenFlag(f, &c.Listen)
	f.String(&c.LogLevel, "log-level", "info",
		"least severe log level written: debug, info, warn or error")
	registerWebFlags(f, &c.Web)
	registerCORSFlag(f, &c.Web.CORSOrigins)
	registerNATSFlags(f, &c.NATS, true)
	return f
}

func runWeb(ctx context.Context, args []string, env Env, stdio Stdio, _ Options) error {
	var c webCmdConfig
	if err := parse(webFlags(&c, stdio.Stderr), args, env); err != nil {
		return err
	}
	log, err := observe.NewLogger(stdio.Stderr, c.LogLevel)
	if err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	if c.Web.AuditKey == "" {
		return usageError{errors.New("--audit-key is required: the key file that signs audit checkpoints")}
	}
	key, err := token.LoadKeyFile(c.Web.AuditKey)
	if err != nil {
		return fmt.Errorf("audit key: %w", err)
	}
	if c.Web.KeyEncryptionKey == "" {
		return usageError{errors.New("--key-encryption-key is required: the file of the key that encrypts token signing keys")}
	}
	kek, err := loadKEKFile(c.Web.KeyEncryptionKey)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, c.Web.DB, log)
	if err != nil {
		return err
	}
	if err := checkMigrated(ctx, db); err != nil {
		return errors.Join(err, db.Close())
	}
	var cluster tandem.Cluster
	if c.NATS.URL != "" {
		if err := c.NATS.check(); err != nil {
			return errors.Join(usageError{err}, db.Close())
		}
		bus, err := connectBus(ctx, c.NATS, nil, "web", log)
		if err != nil {
			return errors.Join(err, db.Close())
		}
		defer bus.Close()
		cluster = bus
	}
	c.Web.NodeTTL = c.NATS.NodeTTL
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return errors.Join(fmt.Errorf("web listen: %w", err), db.Close())
	}
	w, err := startWeb(ln, db, c.Web, webKeys{audit: key, kek: kek}, cluster, log)
	if err != nil {
		return errors.Join(err, ln.Close(), db.Close())
	}
	fmt.Fprintf(stdio.Stdout, "web: %s/admin\n", w.url)
	return w.run(ctx)
}
