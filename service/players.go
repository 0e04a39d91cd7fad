package service

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/token"
)

// PlayerConfig configures player accounts, their sessions and tokens.
// Zero values take the defaults named on each field.
type PlayerConfig struct {
	// KeyEncryptionKey (32 bytes, from configuration) seals the token
	// signing keys stored in the database and keys the hashes of rate-limit
	// counters. Player logins fail without it.
	KeyEncryptionKey []byte
	// RealtimeTokenTTL is the lifetime of realtime tokens (default and
	// maximum tandem.MaxTokenLifetime).
	RealtimeTokenTTL time.Duration
	// AccessTTL is the lifetime of an access token for the player API
	// (default 15m); RefreshTTL of a refresh token (default 720h). Every
	// refresh issues a new one of each.
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// KeyRotation is how long a signing key signs before a new one takes
	// over (default 24h). The old key is still published for the lifetime
	// of the tokens it signed, so two keys are valid during a rollover.
	KeyRotation time.Duration
	// RealtimeURL is the realtime endpoint told to clients at login ("" if
	// none is configured).
	RealtimeURL string

	// Rate limits of the login calls (guest, register, login, refresh):
	// within LimitWindow (default 1m) at most LimitPerAddress calls from
	// one address (default 60), LimitPerDevice for one device id (default
	// 10) and LimitPerAccount for one account (default 10).
	LimitWindow     time.Duration
	LimitPerAddress int
	LimitPerDevice  int
	LimitPerAccount int

	// LoginRetention is how long login records (with their addresses) are
	// kept for the admin's player page (default 90 days).
	LoginRetention time.Duration
}

// Client is where a player's request comes from.
type Client struct {
	Address   string // as --trusted-proxies decided
	UserAgent string
}

// GuestLogin logs a device in, creating its account on first use.
type GuestLogin struct {
	DeviceID string
	// Secret is the 128-bit (or longer) random secret the client generated
	// for the device, base64url or hex.
	Secret      string
	DisplayName string // for a new account; optional
	Client
}

// Registration creates an account with an email and a password.
type Registration struct {
	Email       string
	Password    string
	DisplayName string // optional
	DeviceID    string // optional: device bans apply to it
	Client
}

// PasswordLogin logs in with an email and a password.
type PasswordLogin struct {
	Email    string
	Password string
	DeviceID string // optional: device bans apply to it
	Client
}

// AuthResult is what a login or a refresh gives the client.
type AuthResult struct {
	Player           *tandem.PlayerAccount
	Created          bool // the login created the account
	SessionID        string
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	RealtimeToken
}

// RealtimeToken is a signed realtime token and where to use it.
type RealtimeToken struct {
	Token     string
	ExpiresAt time.Time
	URL       string
}

// PlayerActor is a player authenticated by an access token, calling the
// player API about their own account.
type PlayerActor struct {
	PlayerID  string
	SessionID string
	Client
}

// ProfileUpdate changes the fields of a profile that are not nil.
type ProfileUpdate struct {
	DisplayName *string
	Locale      *string
	AvatarURL   *string
}

// PlayerDetail is everything the admin's player page shows.
type PlayerDetail struct {
	Player   *tandem.PlayerAccount
	Devices  []*tandem.PlayerDevice
	Logins   []*tandem.LoginRecord
	Sessions []*tandem.PlayerSession
	Bans     []*tandem.Ban
	Notes    []*tandem.PlayerNote
	// BannedDevices names the device of each device ban (by ban id) whose
	// device the player still has; bans keep only a keyed hash of it.
	BannedDevices map[int64]string
}

// BanRequest describes a ban.
type BanRequest struct {
	PlayerID string
	Scope    tandem.BanScope
	// DeviceID names one of the player's devices (BanDevice only).
	DeviceID string
	Reason   string
	StartsAt time.Time // zero: now
	EndsAt   time.Time // zero: permanent
}

// PlayerEdit is what an admin (or the game's servers, with an API key)
// changes on a player; nil fields stay.
type PlayerEdit struct {
	DisplayName *string
	// MM replaces the whole set of matchmaking properties when not nil.
	MM map[string]string
}

func (c *PlayerConfig) setDefaults() {
	if c.RealtimeTokenTTL <= 0 {
		c.RealtimeTokenTTL = tandem.MaxTokenLifetime
	}
	if c.AccessTTL <= 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = 720 * time.Hour
	}
	if c.KeyRotation <= 0 {
		c.KeyRotation = 24 * time.Hour
	}
	if c.LimitWindow <= 0 {
		c.LimitWindow = time.Minute
	}
	if c.LimitPerAddress <= 0 {
		c.LimitPerAddress = 60
	}
	if c.LimitPerDevice <= 0 {
		c.LimitPerDevice = 10
	}
	if c.LimitPerAccount <= 0 {
		c.LimitPerAccount = 10
	}
	if c.LoginRetention <= 0 {
		c.LoginRetention = 90 * 24 * time.Hour
	}
}

func (c *PlayerConfig) check() error {
	switch {
	case c.KeyEncryptionKey != nil && len(c.KeyEncryptionKey) != 32:
		return fmt.Errorf("service: the key encryption key is %d bytes, want 32", len(c.KeyEncryptionKey))
	case c.RealtimeTokenTTL%time.Second != 0 || c.RealtimeTokenTTL > tandem.MaxTokenLifetime:
		return fmt.Errorf("service: realtime token lifetime %s is not whole seconds up to %s", c.RealtimeTokenTTL, tandem.MaxTokenLifetime)
	case c.KeyRotation <= c.rollover()+keyPrepublish:
		// Otherwise a third key would be published while two are still valid.
		return fmt.Errorf("service: signing key rotation %s must be longer than the rollover %s (token lifetime + clock skew + %s) and the %s a new key is published before it signs",
			c.KeyRotation, c.rollover(), signerReload, keyPrepublish)
	}
	return nil
}

// Token formats: a prefix says what a token is (and lets secret scanners
// find leaked ones), then 32 random bytes in base64url.
const (
	accessPrefix  = "tpa_"
	refreshPrefix = "tpr_"
)

// Field bounds.
const (
	maxDeviceIDLen    = 128
	minSecretLen      = 22 // 128 bits of base64url
	maxSecretLen      = 128
	maxEmailLen       = 254
	maxDisplayNameLen = 64
	maxLocaleLen      = 35
	maxAvatarURLLen   = 512
	maxUserAgentLen   = 256
	minPlayerPassword = 8
)

// GuestLogin logs in with a device id and its secret; the first login of
// a device creates a guest account.
func (s *Service) GuestLogin(ctx context.Context, in GuestLogin) (*AuthResult, error) {
	var fields []tandem.FieldError
	fields = append(fields, checkDeviceID("device_id", in.DeviceID, true)...)
	if !isSecret(in.Secret) {
		fields = append(fields, tandem.FieldError{Field: "secret", Message: "must be 22 to 128 characters of A-Z a-z 0-9 - _ (at least 128 random bits)"})
	}
	if in.DisplayName != "" {
		fields = append(fields, checkName("display_name", in.DisplayName, maxDisplayNameLen)...)
	}
	if err := tandem.Invalid(fields); err != nil {
		return nil, err
	}
	now := s.now()
	device := s.deviceLimit(in.DeviceID, in.Address)
	if err := s.hitLimits(ctx, now, s.addressLimit(in.Address)); err != nil {
		return nil, err
	}
	signer, err := s.signer(ctx)
	if err != nil {
		return nil, err
	}
	wrongSecret := tandem.Errorf(tandem.EUnauthenticated, "wrong device id or secret")
	// Two first logins of one device race to create it: the loser finds
	// the winner's device on its second try.
	for try := 0; ; try++ {
		// The device's failure count, and which player the device belongs
		// to, read without locks: the transaction then locks the player
		// before the device, the order every writer of both keeps
		// (deletion locks the player, then deletes its devices).
		var owner string
		err := s.store.View(ctx, func(tx tandem.Tx) error {
			if err := s.checkLimitsTx(ctx, tx, now, device); err != nil {
				return err
			}
			d, err := tx.PlayerDevice(ctx, in.DeviceID)
			if err == nil {
				owner = d.PlayerID
			} else if tandem.ErrorCodeOf(err) != tandem.ENotFound {
				return err
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		var res *AuthResult
		err = s.store.Update(ctx, func(tx tandem.Tx) error {
			created := false
			var p *tandem.PlayerAccount
			if owner != "" {
				var err error
				if p, err = tx.Player(ctx, owner); err != nil {
					return err
				}
			}
			d, err := tx.PlayerDevice(ctx, in.DeviceID)
			switch {
			case tandem.ErrorCodeOf(err) == tandem.ENotFound:
				p = &tandem.PlayerAccount{ID: newPlayerID(now), DisplayName: in.DisplayName, CreatedAt: now, UpdatedAt: now}
				if err := tx.CreatePlayer(ctx, p); err != nil {
					return err
				}
				d = &tandem.PlayerDevice{ID: in.DeviceID, PlayerID: p.ID, SecretHash: hashToken(in.Secret), CreatedAt: now, LastSeenAt: now}
				if err := tx.CreatePlayerDevice(ctx, d); err != nil {
					return err
				}
				created = true
			case err != nil:
				return err
			case p == nil || d.PlayerID != p.ID:
				// The device changed hands since the read: read again.
				return tandem.Errorf(tandem.EConflict, "the device changed owner")
			case subtle.ConstantTimeCompare(d.SecretHash, hashToken(in.Secret)) != 1:
				return wrongSecret
			default:
				if err := tx.TouchPlayerDevice(ctx, d.ID, now); err != nil {
					return err
				}
			}
			res, err = s.startSession(ctx, tx, signer, p, tandem.LoginGuest, in.DeviceID, in.Client, now)
			if res != nil {
				res.Created = created
			}
			return err
		})
		switch {
		case tandem.ErrorCodeOf(err) == tandem.EConflict && try == 0:
			continue
		case err == wrongSecret:
			s.countFailure(ctx, now, device)
		}
		if err != nil {
			return nil, err
		}
		return s.withNode(ctx, res), nil
	}
}

// Register creates an account with an email and a password and logs it in.
func (s *Service) Register(ctx context.Context, in Registration) (*AuthResult, error) {
	email := normalizeEmail(in.Email)
	var fields []tandem.FieldError
	fields = append(fields, checkEmail("email", email)...)
	fields = append(fields, checkPlayerPassword("password", in.Password, email)...)
	if in.DisplayName != "" {
		fields = append(fields, checkName("display_name", in.DisplayName, maxDisplayNameLen)...)
	}
	fields = append(fields, checkDeviceID("device_id", in.DeviceID, false)...)
	if err := tandem.Invalid(fields); err != nil {
		return nil, err
	}
	now := s.now()
	if err := s.hitLimits(ctx, now, s.addressLimit(in.Address)); err != nil {
		return nil, err
	}
	signer, err := s.signer(ctx)
	if err != nil {
		return nil, err
	}
	hash, err := s.playerPasswords.hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	var res *AuthResult
	err = s.store.Update(ctx, func(tx tandem.Tx) error {
		p := &tandem.PlayerAccount{ID: newPlayerID(now), DisplayName: in.DisplayName, Email: email, PasswordHash: hash,
			CreatedAt: now, UpdatedAt: now}
		if err := tx.CreatePlayer(ctx, p); err != nil {
			if tandem.ErrorCodeOf(err) == tandem.EConflict {
				return tandem.Invalid([]tandem.FieldError{{Field: "email", Message: "is taken"}})
			}
			return err
		}
		res, err = s.startSession(ctx, tx, signer, p, tandem.LoginPassword, in.DeviceID, in.Client, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	res.Created = true
	return s.withNode(ctx, res), nil
}

// PasswordLogin logs in with an email and a password. Only failures count
// against the account, and a login naming a device the account has logged
// in from before is spared the account's limit (as admins' known browsers
// are), so nobody locks a player out by guessing in their name.
func (s *Service) PasswordLogin(ctx context.Context, in PasswordLogin) (*AuthResult, error) {
	email := normalizeEmail(in.Email)
	wrong := tandem.Errorf(tandem.EUnauthenticated, "wrong email or password")
	if len(email) > maxEmailLen || !validText(email) || len(in.Password) > 4*maxPasswordLen || in.Password == "" {
		return nil, wrong
	}
	if err := tandem.Invalid(checkDeviceID("device_id", in.DeviceID, false)); err != nil {
		return nil, err
	}
	now := s.now()
	account, device := s.accountLimit(email), s.deviceLimit(in.DeviceID, in.Address)
	if err := s.hitLimits(ctx, now, s.addressLimit(in.Address)); err != nil {
		return nil, err
	}
	signer, err := s.signer(ctx)
	if err != nil {
		return nil, err
	}
	var p *tandem.PlayerAccount
	err = s.store.View(ctx, func(tx tandem.Tx) (err error) {
		p, err = tx.PlayerByEmail(ctx, email)
		if tandem.ErrorCodeOf(err) == tandem.ENotFound {
			p = nil
		} else if err != nil {
			return err
		}
		known := false
		if p != nil && in.DeviceID != "" {
			if known, err = s.knownDevice(ctx, tx, p.ID, in.DeviceID); err != nil {
				return err
			}
		}
		limits := []limit{device}
		if !known {
			limits = append(limits, account)
		}
		return s.checkLimitsTx(ctx, tx, now, limits...)
	})
	if err != nil {
		return nil, err
	}
	if p == nil {
		// As long as a wrong password takes, so timing does not tell which
		// emails have accounts.
		if _, err := s.playerPasswords.verify(ctx, s.dummyHash, in.Password); err != nil {
			return nil, err
		}
		s.countFailure(ctx, now, account, device)
		return nil, wrong
	}
	ok, err := s.playerPasswords.verify(ctx, p.PasswordHash, in.Password)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.countFailure(ctx, now, account, device)
		return nil, wrong
	}
	var res *AuthResult
	err = s.store.Update(ctx, func(tx tandem.Tx) error {
		// Read again: the account may have changed during the hashing.
		cur, err := tx.Player(ctx, p.ID)
		if err != nil {
			return err
		}
		if cur.PasswordHash != p.PasswordHash {
			return wrong
		}
		res, err = s.startSession(ctx, tx, signer, cur, tandem.LoginPassword, in.DeviceID, in.Client, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.withNode(ctx, res), nil
}

// knownDevice reports whether the player has logged in from the device
// before: it is one of their guest devices, or a session of theirs logged
// in with it.
func (s *Service) knownDevice(ctx context.Context, tx tandem.Tx, playerID, deviceID string) (bool, error) {
	devices, err := tx.PlayerDevices(ctx, playerID)
	if err != nil {
		return false, err
	}
	if slices.ContainsFunc(devices, func(d *tandem.PlayerDevice) bool { return d.ID == deviceID }) {
		return true, nil
	}
	sessions, err := tx.PlayerSessions(ctx, playerID)
	if err != nil {
		return false, err
	}
	h := s.deviceHash(deviceID)
	return slices.ContainsFunc(sessions, func(x *tandem.PlayerSession) bool { return hmac.Equal(x.DeviceHash, h) }), nil
}

// startSession checks the account and its bans and opens a session: new
// tokens, a login record, the account's last login. The realtime token is
// signed here too (it is only CPU work), so that a failure anywhere rolls
// the whole login back.
func (s *Service) startSession(ctx context.Context, tx tandem.Tx, signer *token.Signer, p *tandem.PlayerAccount, method, deviceID string, c Client, now time.Time) (*AuthResult, error) {
	if p.Deleted() {
		return nil, tandem.Errorf(tandem.EUnauthenticated, "the account was deleted")
	}
	deviceHash := s.deviceHash(deviceID)
	if err := s.checkBans(ctx, tx, p.ID, deviceHash, now); err != nil {
		return nil, err
	}
	access, refresh := accessPrefix+randomToken(32), refreshPrefix+randomToken(32)
	sess := &tandem.PlayerSession{
		ID: randomHex(16), PlayerID: p.ID, Method: method,
		AccessHash: hashToken(access), AccessExpiresAt: now.Add(s.cfg.Players.AccessTTL),
		RefreshHash: hashToken(refresh), RefreshExpiresAt: now.Add(s.cfg.Players.RefreshTTL),
		DeviceHash: deviceHash, Address: storableText(c.Address, 64), UserAgent: storableText(c.UserAgent, maxUserAgentLen),
		CreatedAt: now, LastUsedAt: now,
	}
	if err := tx.CreatePlayerSession(ctx, sess); err != nil {
		return nil, err
	}
	if err := tx.AddLoginRecord(ctx, &tandem.LoginRecord{PlayerID: p.ID, At: now, Method: method, DeviceID: deviceID,
		Address: sess.Address, UserAgent: sess.UserAgent}); err != nil {
		return nil, err
	}
	p.LastLoginAt = now
	if err := tx.UpdatePlayer(ctx, p); err != nil {
		return nil, err
	}
	rt, err := s.realtimeToken(signer, p, now)
	if err != nil {
		return nil, err
	}
	return &AuthResult{Player: p, SessionID: sess.ID,
		AccessToken: access, AccessExpiresAt: sess.AccessExpiresAt,
		RefreshToken: refresh, RefreshExpiresAt: sess.RefreshExpiresAt, RealtimeToken: *rt}, nil
}

func (s *Service) realtimeToken(signer *token.Signer, p *tandem.PlayerAccount, now time.Time) (*RealtimeToken, error) {
	ttl := s.cfg.Players.RealtimeTokenTTL
	tok, err := signer.Issue(tandem.Player{ID: p.ID, Name: p.DisplayName, MM: p.MM}, now, ttl)
	if err != nil {
		return nil, err
	}
	return &RealtimeToken{Token: tok, ExpiresAt: now.Add(ttl).Truncate(time.Second), URL: s.cfg.Players.RealtimeURL}, nil
}

// checkBans refuses a player kept out by a ban at now, saying until when.
func (s *Service) checkBans(ctx context.Context, tx tandem.Tx, playerID string, deviceHash []byte, now time.Time) error {
	bans, err := tx.ActiveBans(ctx, playerID, deviceHash, now)
	if err != nil || len(bans) == 0 {
		return err
	}
	// The ban that lasts longest decides what the player is told.
	b := bans[0]
	for _, o := range bans[1:] {
		if b.EndsAt.IsZero() {
			break
		}
		if o.EndsAt.IsZero() || o.EndsAt.After(b.EndsAt) {
			b = o
		}
	}
	if b.EndsAt.IsZero() {
		return &tandem.Error{Code: tandem.EBanned, Message: "banned permanently: " + b.Reason}
	}
	return &tandem.Error{Code: tandem.EBanned, Message: fmt.Sprintf("banned until %s: %s", b.EndsAt.Format(time.RFC3339), b.Reason), Until: b.EndsAt}
}

// refreshReuseLeeway is how soon after a refresh the token it used up is
// still honoured once more (see Refresh).
const refreshReuseLeeway = 30 * time.Second

// Refresh uses up a refresh token and returns new tokens. A refresh token
// presented a second time revokes its whole session (family): someone else
// has a copy. The one exception is the token the session used up last,
// within refreshReuseLeeway of its use, once: a client whose answer was
// lost retries with it, and gets a new pair while the pair it missed
// becomes a used token.
func (s *Service) Refresh(ctx context.Context, refreshToken string, c Client) (*AuthResult, error) {
	invalid := tandem.Errorf(tandem.EUnauthenticated, "refresh token is not valid")
	now := s.now()
	address := s.addressLimit(c.Address)
	if !strings.HasPrefix(refreshToken, refreshPrefix) || len(refreshToken) > 128 {
		s.countFailure(ctx, now, address)
		return nil, invalid
	}
	signer, err := s.signer(ctx)
	if err != nil {
		return nil, err
	}
	hash := hashToken(refreshToken)
	// Refreshes with valid tokens do not count against the address (many
	// players share one behind carrier-grade NAT); failures do. The
	// session's player is read without locks: the transaction locks the
	// player before the session, the order every writer of both keeps.
	var playerID string
	err = s.store.View(ctx, func(tx tandem.Tx) error {
		if err := s.checkLimitsTx(ctx, tx, now, address); err != nil {
			return err
		}
		sess, err := tx.PlayerSessionByRefresh(ctx, hash)
		if tandem.ErrorCodeOf(err) == tandem.ENotFound {
			sess, err = tx.PlayerSessionByUsedRefresh(ctx, hash)
		}
		if err == nil {
			playerID = sess.PlayerID
		} else if tandem.ErrorCodeOf(err) != tandem.ENotFound {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var res *AuthResult
	reused := false
	err = s.store.Update(ctx, func(tx tandem.Tx) error {
		var p *tandem.PlayerAccount
		if playerID != "" {
			var err error
			if p, err = tx.Player(ctx, playerID); err != nil {
				return err
			}
		}
		sess, err := tx.PlayerSessionByRefresh(ctx, hash)
		used := hash
		if tandem.ErrorCodeOf(err) == tandem.ENotFound {
			old, err := tx.PlayerSessionByUsedRefresh(ctx, hash)
			if tandem.ErrorCodeOf(err) == tandem.ENotFound {
				return invalid
			} else if err != nil {
				return err
			}
			last, usedAt, err := tx.LastUsedRefresh(ctx, old.ID)
			if err != nil {
				return err
			}
			retry := p != nil && old.PlayerID == p.ID && bytes.Equal(last, hash) && now.Sub(usedAt) <= refreshReuseLeeway
			if !retry {
				// Reuse: the family is revoked, and that must be committed.
				reused = true
				return tx.DeletePlayerSession(ctx, old.ID)
			}
			// The token the session used up last, moments ago: most likely
			// the client never got the answer to its refresh and tries
			// again. It gets a new pair; the pair it missed is recorded as
			// used (so it is the last used token now, and this one is not
			// honoured a second time), and whoever holds the missed pair
			// revokes the session by presenting it.
			sess, used = old, old.RefreshHash
		} else if err != nil {
			return err
		}
		if p == nil || sess.PlayerID != p.ID {
			return invalid // a session made since the read: cannot be this token's
		}
		if !now.Before(sess.RefreshExpiresAt) {
			return tandem.Errorf(tandem.EUnauthenticated, "the session has expired: log in again")
		}
		if p.Deleted() {
			return invalid
		}
		if err := s.hitLimitsTx(ctx, tx, now, s.playerLimit(p.ID)); err != nil {
			return err
		}
		if err := s.checkBans(ctx, tx, p.ID, sess.DeviceHash, now); err != nil {
			return err
		}
		access, refresh := accessPrefix+randomToken(32), refreshPrefix+randomToken(32)
		sess.AccessHash, sess.AccessExpiresAt = hashToken(access), now.Add(s.cfg.Players.AccessTTL)
		sess.RefreshHash, sess.RefreshExpiresAt = hashToken(refresh), now.Add(s.cfg.Players.RefreshTTL)
		sess.LastUsedAt = now
		if err := tx.RotatePlayerSession(ctx, sess, used); err != nil {
			return err
		}
		rt, err := s.realtimeToken(signer, p, now)
		if err != nil {
			return err
		}
		res = &AuthResult{Player: p, SessionID: sess.ID,
			AccessToken: access, AccessExpiresAt: sess.AccessExpiresAt,
			RefreshToken: refresh, RefreshExpiresAt: sess.RefreshExpiresAt, RealtimeToken: *rt}
		return nil
	})
	if err == invalid {
		s.countFailure(ctx, now, address)
	}
	if err != nil {
		return nil, err
	}
	if reused {
		s.log.Warn("refresh token reused: session revoked", "address", c.Address)
		return nil, tandem.Errorf(tandem.EUnauthenticated, "refresh token was already used: the session is revoked, log in again")
	}
	return s.withNode(ctx, res), nil
}

// AuthenticatePlayer returns the player an access token belongs to.
// An expired token is ETokenExpired (refresh it); an unknown one
// EUnauthenticated; a banned player's EBanned (a ban that started after
// the login, or one on the session's device).
func (s *Service) AuthenticatePlayer(ctx context.Context, accessToken string, c Client) (*PlayerActor, error) {
	if !strings.HasPrefix(accessToken, accessPrefix) || len(accessToken) > 128 {
		return nil, tandem.Errorf(tandem.EUnauthenticated, "access token is not valid")
	}
	now := s.now()
	var sess *tandem.PlayerSession
	err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
		sess, err = tx.PlayerSessionByAccess(ctx, hashToken(accessToken))
		if err != nil || !now.Before(sess.AccessExpiresAt) {
			return err
		}
		return s.checkBans(ctx, tx, sess.PlayerID, sess.DeviceHash, now)
	})
	switch {
	case tandem.ErrorCodeOf(err) == tandem.ENotFound:
		return nil, tandem.Errorf(tandem.EUnauthenticated, "access token is not valid")
	case err != nil:
		return nil, err
	case !now.Before(sess.AccessExpiresAt):
		return nil, tandem.Errorf(tandem.ETokenExpired, "access token has expired: refresh it")
	}
	if now.Sub(sess.LastUsedAt) > touchEvery {
		err := s.store.Update(ctx, func(tx tandem.Tx) error { return tx.TouchPlayerSession(ctx, sess.ID, now) })
		if err != nil && tandem.ErrorCodeOf(err) != tandem.ENotFound {
			s.log.Warn("player session not touched", "err", err)
		}
	}
	return &PlayerActor{PlayerID: sess.PlayerID, SessionID: sess.ID, Client: c}, nil
}

// own refuses a player acting on an account other than their own. The
// HTTP layer checks this too; the service does not rely on it.
func own(p *PlayerActor, playerID string) error {
	if p == nil {
		return tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	if p.PlayerID != playerID {
		return tandem.Errorf(tandem.ENotFound, "no such player")
	}
	return nil
}

// PlayerLogout ends the caller's session.
func (s *Service) PlayerLogout(ctx context.Context, p *PlayerActor) error {
	if err := own(p, p.PlayerID); err != nil {
		return err
	}
	err := s.store.Update(ctx, func(tx tandem.Tx) error { return tx.DeletePlayerSession(ctx, p.SessionID) })
	if tandem.ErrorCodeOf(err) == tandem.ENotFound {
		return nil // ended already
	}
	return err
}

// Profile returns the caller's own account.
func (s *Service) Profile(ctx context.Context, p *PlayerActor, playerID string) (*tandem.PlayerAccount, error) {
	if err := own(p, playerID); err != nil {
		return nil, err
	}
	var acct *tandem.PlayerAccount
	err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
		acct, err = livePlayer(ctx, tx, playerID)
		return err
	})
	return acct, err
}

// livePlayer returns the account unless it was deleted.
func livePlayer(ctx context.Context, tx tandem.Tx, id string) (*tandem.PlayerAccount, error) {
	p, err := tx.Player(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Deleted() {
		return nil, tandem.Errorf(tandem.ENotFound, "the account was deleted")
	}
	return p, nil
}

// UpdateProfile changes the caller's display name, locale or avatar URL.
func (s *Service) UpdateProfile(ctx context.Context, p *PlayerActor, playerID string, u ProfileUpdate) (*tandem.PlayerAccount, error) {
	if err := own(p, playerID); err != nil {
		return nil, err
	}
	var fields []tandem.FieldError
	if u.DisplayName != nil {
		fields = append(fields, checkName("display_name", *u.DisplayName, maxDisplayNameLen)...)
	}
	if u.Locale != nil && *u.Locale != "" && !isLocale(*u.Locale) {
		fields = append(fields, tandem.FieldError{Field: "locale", Message: "must be a language tag such as en or pt-BR"})
	}
	if u.AvatarURL != nil && *u.AvatarURL != "" {
		fields = append(fields, checkAvatarURL("avatar_url", *u.AvatarURL)...)
	}
	if err := tandem.Invalid(fields); err != nil {
		return nil, err
	}
	var acct *tandem.PlayerAccount
	err := s.store.Update(ctx, func(tx tandem.Tx) (err error) {
		if acct, err = livePlayer(ctx, tx, playerID); err != nil {
			return err
		}
		if u.DisplayName != nil {
			acct.DisplayName = *u.DisplayName
		}
		if u.Locale != nil {
			acct.Locale = *u.Locale
		}
		if u.AvatarURL != nil {
			acct.AvatarURL = *u.AvatarURL
		}
		acct.UpdatedAt = s.now()
		return tx.UpdatePlayer(ctx, acct)
	})
	return acct, err
}

// LinkEmail gives a guest account an email and a password. It counts
// against the account and the address like a login: each call costs a
// password hash.
func (s *Service) LinkEmail(ctx context.Context, p *PlayerActor, playerID, email, password string) (*tandem.PlayerAccount, error) {
	if err := own(p, playerID); err != nil {
		return nil, err
	}
	email = normalizeEmail(email)
	fields := append(checkEmail("email", email), checkPlayerPassword("password", password, email)...)
	if err := tandem.Invalid(fields); err != nil {
		return nil, err
	}
	now := s.now()
	if err := s.hitLimits(ctx, now, s.addressLimit(p.Address), s.playerLimit(playerID)); err != nil {
		return nil, err
	}
	hasEmail := tandem.Errorf(tandem.EConflict, "the account has an email already")
	// The cheap refusal before the costly hash.
	err := s.store.View(ctx, func(tx tandem.Tx) error {
		acct, err := livePlayer(ctx, tx, playerID)
		if err == nil && acct.Email != "" {
			return hasEmail
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	hash, err := s.playerPasswords.hash(ctx, password)
	if err != nil {
		return nil, err
	}
	var acct *tandem.PlayerAccount
	err = s.store.Update(ctx, func(tx tandem.Tx) (err error) {
		if acct, err = livePlayer(ctx, tx, playerID); err != nil {
			return err
		}
		if acct.Email != "" {
			return hasEmail
		}
		acct.Email, acct.PasswordHash, acct.UpdatedAt = email, hash, s.now()
		if err := tx.UpdatePlayer(ctx, acct); tandem.ErrorCodeOf(err) == tandem.EConflict {
			return tandem.Invalid([]tandem.FieldError{{Field: "email", Message: "is taken"}})
		} else if err != nil {
			return err
		}
		return nil
	})
	return acct, err
}

// DeleteAccount erases the caller's personal data and ends every session,
// realtime ones too (through a revocation of the player's tokens, as
// LogoutPlayerEverywhere); the account's id stays as a tombstone. The
// audit log records that the id deleted itself, and nothing else about it.
func (s *Service) DeleteAccount(ctx context.Context, p *PlayerActor, playerID string) error {
	if err := own(p, playerID); err != nil {
		return err
	}
	now := s.now()
	err := s.store.Update(ctx, func(tx tandem.Tx) error {
		acct, err := livePlayer(ctx, tx, playerID)
		if err != nil {
			return err
		}
		if err := scrubPlayer(ctx, tx, acct, now); err != nil {
			return err
		}
		r := revocation(playerID, now)
		if err := tx.PutRevocation(ctx, &r); err != nil {
			return err
		}
		rec := &tandem.AuditRecord{At: now, ActorKind: tandem.ActorPlayer, Action: "player.delete",
			TargetType: "player", TargetID: playerID, Result: tandem.AuditOK}
		return s.appendAudit(ctx, tx, rec)
	})
	if err != nil {
		return err
	}
	s.wakeJob(ctx, jobBans)
	return nil
}

// scrubPlayer erases an account's personal data: its fields but the id,
// its devices, sessions, login records and notes. Bans stay (a device ban
// keeps only the device id's hash).
func scrubPlayer(ctx context.Context, tx tandem.Tx, p *tandem.PlayerAccount, now time.Time) error {
	*p = tandem.PlayerAccount{ID: p.ID, CreatedAt: p.CreatedAt, UpdatedAt: now, DeletedAt: now}
	if err := tx.UpdatePlayer(ctx, p); err != nil {
		return err
	}
	if _, err := tx.DeletePlayerSessions(ctx, p.ID); err != nil {
		return err
	}
	if err := tx.DeletePlayerDevices(ctx, p.ID); err != nil {
		return err
	}
	if err := tx.DeleteLoginRecords(ctx, p.ID); err != nil {
		return err
	}
	return tx.DeletePlayerNotes(ctx, p.ID)
}

// OwnSessions lists the caller's sessions.
func (s *Service) OwnSessions(ctx context.Context, p *PlayerActor, playerID string) ([]*tandem.PlayerSession, error) {
	if err := own(p, playerID); err != nil {
		return nil, err
	}
	var out []*tandem.PlayerSession
	err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
		out, err = tx.PlayerSessions(ctx, playerID)
		return err
	})
	return out, err
}

// EndOwnSession ends one of the caller's sessions.
func (s *Service) EndOwnSession(ctx context.Context, p *PlayerActor, playerID, sessionID string) error {
	if err := own(p, playerID); err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx tandem.Tx) error {
		sessions, err := tx.PlayerSessions(ctx, playerID)
		if err != nil {
			return err
		}
		for _, sess := range sessions {
			if sess.ID == sessionID {
				return tx.DeletePlayerSession(ctx, sessionID)
			}
		}
		return tandem.Errorf(tandem.ENotFound, "no such session")
	})
}

// IssueRealtimeToken returns a new realtime token for the caller.
func (s *Service) IssueRealtimeToken(ctx context.Context, p *PlayerActor, playerID string) (*RealtimeToken, error) {
	if err := own(p, playerID); err != nil {
		return nil, err
	}
	signer, err := s.signer(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var acct *tandem.PlayerAccount
	err = s.store.View(ctx, func(tx tandem.Tx) (err error) {
		if acct, err = livePlayer(ctx, tx, playerID); err != nil {
			return err
		}
		// The session's device counts: a device ban stops its tokens too.
		sessions, err := tx.PlayerSessions(ctx, playerID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(sessions, func(x *tandem.PlayerSession) bool { return x.ID == p.SessionID })
		if i < 0 {
			return tandem.Errorf(tandem.EUnauthenticated, "the session has ended: log in again")
		}
		return s.checkBans(ctx, tx, playerID, sessions[i].DeviceHash, now)
	})
	if err != nil {
		return nil, err
	}
	rt, err := s.realtimeToken(signer, acct, now)
	if err != nil {
		return nil, err
	}
	rt.URL = s.realtimeURL(ctx, acct.ID)
	return rt, nil
}

// withNode points res's realtime token at a node. It runs after the
// transaction, so a slow bus never holds the database.
func (s *Service) withNode(ctx context.Context, res *AuthResult) *AuthResult {
	res.RealtimeToken.URL = s.realtimeURL(ctx, res.Player.ID)
	return res
}
