// Package service is the one service layer of the web server. Every
// operation an admin (or the CLI, or a program with an API key) can do is a
// method here: it checks the caller's permission, does the work through the
// root Store interfaces and writes the audit record in the same transaction.
// Denied and failed attempts are audited too, each in a transaction of its
// own. The admin UI, the JSON API and the CLI only call this package.
package service

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
)

// Config configures a Service. Zero durations and counts take the defaults
// named on each field.
type Config struct {
	Store  tandem.Store
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	// Passwords are argon2id parameters and the hashing pool's bounds.
	Passwords PasswordConfig

	// AuditKey signs audit checkpoints. It comes from configuration and is
	// never stored in the database. Nil writes no checkpoints (tests only).
	AuditKey ed25519.PrivateKey
	// CheckpointEvery writes a checkpoint in the transaction of every
	// N-th audit record (default 1000).
	CheckpointEvery int64

	// SessionIdle ends an admin session unused for this long (default 30m);
	// SessionLifetime ends any session this long after login (default 12h).
	SessionIdle     time.Duration
	SessionLifetime time.Duration
	// ReauthWindow is how long after a password confirmation sensitive
	// changes are allowed (default 5m).
	ReauthWindow time.Duration

	// Login throttling: within LoginWindow (default 15m) at most
	// LoginFailuresPerAddress failed logins from one address (default 20)
	// and LoginFailuresPerAccount failed logins for one account from
	// browsers it has not logged in from before (default 10). A browser
	// that has logged in to the account (device cookie) is never throttled
	// by the account's count, so an attacker cannot lock the owner out.
	LoginWindow             time.Duration
	LoginFailuresPerAddress int
	LoginFailuresPerAccount int

	// MFAIssuer names the service in authenticator apps (default "Tandem").
	MFAIssuer string

	// Players configures player accounts, their sessions and tokens.
	Players PlayerConfig

	// Cluster is the bus to the realtime nodes; nil runs without one
	// (SendCommand is EUnavailable, no nodes or rooms are live).
	Cluster tandem.Cluster
	// ClusterJobs times RunClusterJobs and the login's node choice.
	ClusterJobs ClusterConfig
	// Matchmaking is the bus's matchmaking part: the queue bucket the
	// queue mirror writes and the tickets the queue pages count. Nil runs
	// without (queues are stored, not mirrored; depths are unavailable).
	Matchmaking tandem.Matchmaking
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 1000
	}
	if c.SessionIdle <= 0 {
		c.SessionIdle = 30 * time.Minute
	}
	if c.SessionLifetime <= 0 {
		c.SessionLifetime = 12 * time.Hour
	}
	if c.ReauthWindow <= 0 {
		c.ReauthWindow = 5 * time.Minute
	}
	if c.LoginWindow <= 0 {
		c.LoginWindow = 15 * time.Minute
	}
	if c.LoginFailuresPerAddress <= 0 {
		c.LoginFailuresPerAddress = 20
	}
	if c.LoginFailuresPerAccount <= 0 {
		c.LoginFailuresPerAccount = 10
	}
	if c.MFAIssuer == "" {
		c.MFAIssuer = "Tandem"
	}
	c.Players.setDefaults()
	c.ClusterJobs.setDefaults()
}

// Service is the service layer. It is safe for concurrent use.
type Service struct {
	cfg       Config
	store     tandem.Store
	log       *slog.Logger
	passwords *passwordHasher
	// dummyHash is verified against when a login names no admin, so the
	// answer takes as long as for a wrong password.
	dummyHash string
	keyID     string
	// keys caches the realtime token signing key.
	keys keyring
	// limitKey keys the hashes that name addresses, devices and emails in
	// rate-limit counters.
	limitKey []byte
	// deviceKey keys the hashes that name devices in sessions and bans.
	deviceKey []byte
	// playerPasswords hashes players' passwords: a pool apart from the
	// admins', so a flood of player logins never locks admins out.
	playerPasswords *passwordHasher
	// cluster wakes the cluster jobs and caches the node registry.
	cluster clusterState
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("service: Config.Store is nil")
	}
	cfg.setDefaults()
	if err := cfg.Players.check(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, store: cfg.Store, log: cfg.Logger, passwords: newPasswordHasher(cfg.Passwords),
		cluster: newClusterState()}
	dummy, err := s.passwords.hash(context.Background(), randomToken(16))
	if err != nil {
		return nil, err
	}
	s.dummyHash = dummy
	if cfg.AuditKey != nil {
		s.keyID = AuditKeyID(cfg.AuditKey.Public().(ed25519.PublicKey))
	}
	s.limitKey = deriveKey(cfg.Players.KeyEncryptionKey, "tandem rate-limit keys")
	s.deviceKey = deriveKey(cfg.Players.KeyEncryptionKey, "tandem device ids")
	s.playerPasswords = newPasswordHasher(cfg.Passwords)
	return s, nil
}

// AuditKeyID names an audit signing key by its public half: the first 8
// bytes of its SHA-256, in hex.
func AuditKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Actor is who calls a service method: an admin with a session, a program
// with an API key, the CLI or the server itself. Authenticate and
// AuthenticateAPIKey make the first two, loading the role afresh on every
// request so a removed permission takes effect on the next one.
type Actor struct {
	Kind    tandem.ActorKind
	ID      int64
	Name    string
	Address string
	// Role is nil for the CLI and the system, which may do everything.
	Role *tandem.Role
	// Admin and Session are set for an admin with a browser session.
	Admin   *tandem.Admin
	Session *tandem.AdminSession
	// APIKey is set for a program with an API key.
	APIKey *tandem.APIKey
}

// CLIActor is someone running a tandem subcommand on the server: they hold
// the database and the keys already, so they may do everything.
func CLIActor(name string) *Actor {
	return &Actor{Kind: tandem.ActorCLI, Name: name, Address: "local"}
}

// SystemActor is the server acting on its own (tandem dev's first admin).
func SystemActor() *Actor { return &Actor{Kind: tandem.ActorSystem, Name: "tandem", Address: "local"} }

// Can reports whether the actor holds p. A session whose MFA is still
// outstanding holds nothing.
func (a *Actor) Can(p tandem.Permission) bool {
	switch {
	case a == nil:
		return false
	case a.Kind == tandem.ActorCLI || a.Kind == tandem.ActorSystem:
		return true
	case a.MFAOutstanding() != "":
		return false
	}
	return a.Role.Has(p)
}

// The steps MFAOutstanding names.
const (
	MFAEnrol     = "enrol"     // the role requires MFA and none is enrolled
	MFAChallenge = "challenge" // MFA is enrolled and this session has not passed it
)

// MFAOutstanding names what a session actor must do before anything else:
// MFAEnrol, MFAChallenge, or "" when nothing.
func (a *Actor) MFAOutstanding() string {
	switch {
	case a == nil || a.Session == nil:
		return ""
	case a.Role.RequiresMFA() && !a.Admin.MFAEnabled():
		// Before the session's own state: an admin promoted into such a
		// role mid-session must enrol before the next request.
		return MFAEnrol
	case a.Session.MFAPassed:
		return ""
	case a.Admin.MFAEnabled():
		return MFAChallenge
	}
	return ""
}

// op describes one audited operation.
type op struct {
	action string
	// perm is the permission needed; "" means any authenticated admin.
	perm tandem.Permission
	// reauth requires a password confirmation within the reauth window.
	reauth bool
	// pending marks the steps of logging in (MFA challenge and enrolment,
	// logout), allowed while MFA is outstanding.
	pending    bool
	targetType string
	targetID   string
}

// authorize decides whether a may run o.
func (s *Service) authorize(a *Actor, o op) error {
	if a == nil {
		return tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	if a.Kind == tandem.ActorCLI || a.Kind == tandem.ActorSystem {
		return nil
	}
	if step := a.MFAOutstanding(); step != "" && !o.pending {
		if step == MFAEnrol {
			return tandem.Errorf(tandem.EMFARequired, "your role requires two-factor authentication: enrol first")
		}
		return tandem.Errorf(tandem.EMFARequired, "enter your two-factor code first")
	}
	if o.perm != "" && !a.Role.Has(o.perm) {
		return tandem.Errorf(tandem.EPermission, "this needs the %s permission", o.perm)
	}
	if o.reauth {
		if a.Session == nil {
			return tandem.Errorf(tandem.EPermission, "this needs an admin session (API keys cannot do it)")
		}
		if s.now().Sub(a.Session.ReauthAt) > s.cfg.ReauthWindow {
			return tandem.Errorf(tandem.EReauthRequired, "confirm your password to continue")
		}
	}
	return nil
}

func (s *Service) newRecord(a *Actor, o op) *tandem.AuditRecord {
	r := &tandem.AuditRecord{
		At:         s.now(),
		ActorKind:  tandem.ActorAnonymous,
		Action:     o.action,
		TargetType: o.targetType,
		TargetID:   o.targetID,
		Result:     tandem.AuditOK,
	}
	if a != nil {
		r.ActorKind, r.ActorID, r.ActorName, r.Address = a.Kind, a.ID, a.Name, a.Address
	}
	return r
}

// update runs an audited write: it authorizes a for o, runs fn in a write
// transaction and appends the audit record fn completed as the
// transaction's last step. A denied or failed attempt is audited in a
// transaction of its own, and its error returned.
func (s *Service) update(ctx context.Context, a *Actor, o op, fn func(tx tandem.Tx, rec *tandem.AuditRecord) error) error {
	rec := s.newRecord(a, o)
	if err := s.authorize(a, o); err != nil {
		s.auditDenied(ctx, rec, err)
		return err
	}
	err := s.store.Update(ctx, func(tx tandem.Tx) error {
		if err := fn(tx, rec); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, rec)
	})
	switch {
	case err == nil:
	case tandem.ErrorCodeOf(err) == tandem.EPermission:
		// Refused by a check only the work could make (granting more than
		// one holds): a denial, not a failure.
		rec.Before, rec.After = "", ""
		s.auditDenied(ctx, rec, err)
	default:
		s.auditFailure(ctx, rec, err)
	}
	return err
}

// view runs an authorized read. Reads that succeed are not audited; denied
// ones are.
func (s *Service) view(ctx context.Context, a *Actor, o op, fn func(tx tandem.Tx) error) error {
	if err := s.authorize(a, o); err != nil {
		s.auditDenied(ctx, s.newRecord(a, o), err)
		return err
	}
	return s.store.View(ctx, fn)
}

// auditDenied records a refused attempt. Only permission refusals are
// audited: missing MFA or re-authentication are steps of a normal flow.
func (s *Service) auditDenied(ctx context.Context, rec *tandem.AuditRecord, err error) {
	code := tandem.ErrorCodeOf(err)
	if code != tandem.EPermission && code != tandem.EUnauthenticated {
		return
	}
	rec.Result = tandem.AuditDenied
	s.auditAlone(ctx, rec, err)
}

// auditFailure records an allowed attempt that failed; the transaction with
// its work was rolled back, so Before and After describe nothing that happened.
func (s *Service) auditFailure(ctx context.Context, rec *tandem.AuditRecord, err error) {
	rec.Result = tandem.AuditFailed
	rec.Before, rec.After = "", ""
	s.auditAlone(ctx, rec, err)
}

func (s *Service) auditAlone(ctx context.Context, rec *tandem.AuditRecord, cause error) {
	rec.Error = tandem.ErrorCodeOf(cause).String() + ": " + tandem.ErrorMessageOf(cause)
	// The caller's context may be ending (a client gone): the record of what
	// it tried is still written.
	ctx = context.WithoutCancel(ctx)
	err := s.store.Update(ctx, func(tx tandem.Tx) error { return s.appendAudit(ctx, tx, rec) })
	if err != nil {
		s.log.Error("audit record lost", "action", rec.Action, "result", rec.Result, "err", err)
	}
}

// appendAudit chains rec to the head and stores it. It locks the head, so
// it must be the transaction's last step. Every CheckpointEvery-th record
// gets a signed checkpoint in the same transaction.
func (s *Service) appendAudit(ctx context.Context, tx tandem.Tx, rec *tandem.AuditRecord) error {
	seq, head, err := tx.LockAuditHead(ctx)
	if err != nil {
		return err
	}
	rec.Seq, rec.PrevHash = seq+1, head
	rec.Hash = rec.ComputeHash()
	if err := tx.AppendAudit(ctx, rec); err != nil {
		return err
	}
	if rec.Seq%s.cfg.CheckpointEvery == 0 {
		return s.addCheckpoint(ctx, tx, rec.Seq, rec.Hash)
	}
	return nil
}

// auditJSON renders a before/after document for the audit log. Text stays
// as written (no \u003c for "<"): the log is read by people, and every page
// escapes what it shows.
func auditJSON(v any) string {
	if v == nil {
		return ""
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%q", err.Error())
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Authorize checks that a may use something that needs p ("" for any
// admin), as the HTTP layer does for each route before its handler runs;
// what is the route is named by target. A refusal is audited like any
// other.
func (s *Service) Authorize(ctx context.Context, a *Actor, p tandem.Permission, target string) error {
	o := op{action: "route.access", perm: p, targetType: "route", targetID: target}
	if err := s.authorize(a, o); err != nil {
		s.auditDenied(ctx, s.newRecord(a, o), err)
		return err
	}
	return nil
}

// checkGrant refuses to hand out permissions the actor does not hold
// itself: without it, whoever may manage roles or admins could make a role
// with every permission and give it to an account they control.
func checkGrant(a *Actor, perms []tandem.Permission) error {
	for _, p := range perms {
		if !a.Can(p) {
			return tandem.Errorf(tandem.EPermission, "you cannot grant %s: you do not hold it", p)
		}
	}
	return nil
}

// grantableRole returns the role with id for assigning it, or a
// validation error naming field when there is none, or a permission error
// when it holds more than the actor.
func grantableRole(ctx context.Context, tx tandem.Tx, a *Actor, id int64, field string) (*tandem.Role, error) {
	r, err := tx.Role(ctx, id)
	if tandem.ErrorCodeOf(err) == tandem.ENotFound {
		return nil, tandem.Invalid([]tandem.FieldError{{Field: field, Message: "no such role"}})
	} else if err != nil {
		return nil, err
	}
	return r, checkGrant(a, r.Permissions)
}
