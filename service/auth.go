package service

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tandemhq/tandem"
)

// LoginRequest is a login attempt from a browser.
type LoginRequest struct {
	Name, Password string
	Address        string
	UserAgent      string
	// Device is the browser's device cookie, if it sent one.
	Device string
	// Previous is the session token the browser still holds, if any: it is
	// ended, so a login always starts a new session (no fixation).
	Previous string
}

// LoginResult is a started session.
type LoginResult struct {
	// Token goes into the session cookie; only its hash is stored.
	Token   string
	Session *tandem.AdminSession
	Actor   *Actor
	// Device is the device cookie to set (the same one when it was known).
	Device string
}

// loginFailed is the one answer to a wrong name, a wrong password and a
// disabled admin, so a login tells nothing about which accounts exist.
func loginFailed() error { return tandem.Errorf(tandem.EUnauthenticated, "wrong name or password") }

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Login checks a name and password and starts a session. The session may
// still need MFA (Actor.MFAOutstanding) before it can do anything else.
func (s *Service) Login(ctx context.Context, req LoginRequest) (*LoginResult, error) {
	now := s.now()
	// The name is the attacker's text until it matches an admin: bounded
	// and valid before it reaches a counter key, a query or the audit log.
	name := req.Name
	if !validText(name) || utf8.RuneCountInString(name) > 64 {
		// No admin has such a name (names are at most 64 characters, and
		// this one becomes 65): only the failure remains to count and audit.
		name = storableText(name, 64) + "…"
	}
	rec := &tandem.AuditRecord{At: now, ActorKind: tandem.ActorAnonymous, ActorName: name,
		Action: "session.login", Address: req.Address, Result: tandem.AuditOK}
	addrKey, acctKey := "login:addr:"+addressKey(req.Address), "login:acct:"+name

	var admin *tandem.Admin
	var knownDevice bool
	err := s.store.View(ctx, func(tx tandem.Tx) error {
		var err error
		admin, err = tx.AdminByName(ctx, name)
		if tandem.ErrorCodeOf(err) == tandem.ENotFound {
			admin = nil
		} else if err != nil {
			return err
		}
		if admin != nil && req.Device != "" {
			if knownDevice, err = tx.HasDevice(ctx, admin.ID, hashToken(req.Device)); err != nil {
				return err
			}
		}
		// A browser the account logged in from before is spared both
		// limits: neither guesses from the same network nor guesses at the
		// account from anywhere can lock its owner out.
		if knownDevice {
			return nil
		}
		n, err := tx.RateLimitCount(ctx, addrKey, s.cfg.LoginWindow, now)
		if err != nil {
			return err
		}
		if n >= s.cfg.LoginFailuresPerAddress {
			return s.rateLimited(now, "too many failed logins from your address; try again later")
		}
		if n, err = tx.RateLimitCount(ctx, acctKey, s.cfg.LoginWindow, now); err != nil {
			return err
		}
		if n >= s.cfg.LoginFailuresPerAccount {
			return s.rateLimited(now, "too many failed logins for this account from new browsers; try again later or use a browser you logged in with before")
		}
		return nil
	})
	if err != nil {
		if tandem.ErrorCodeOf(err) == tandem.ERateLimited {
			s.auditRefusedLogin(ctx, rec, addrKey, err)
		}
		return nil, err
	}

	hash := s.dummyHash
	if admin != nil {
		hash = admin.PasswordHash
	}
	ok, err := s.passwords.verify(ctx, hash, req.Password)
	if err != nil {
		return nil, err
	}
	if !ok || admin == nil || admin.Disabled {
		s.countLoginFailure(ctx, addrKey, acctKey, knownDevice, now)
		rec.Result = tandem.AuditFailed
		s.auditAlone(ctx, rec, loginFailed())
		return nil, loginFailed()
	}

	res := &LoginResult{Token: randomToken(32), Device: req.Device}
	err = s.store.Update(ctx, func(tx tandem.Tx) error {
		role, err := tx.Role(ctx, admin.RoleID)
		if err != nil {
			return err
		}
		if req.Previous != "" {
			if err := tx.DeleteAdminSession(ctx, hashToken(req.Previous)); err != nil && tandem.ErrorCodeOf(err) != tandem.ENotFound {
				return err
			}
		}
		if !knownDevice {
			res.Device = randomToken(32)
			if err := tx.AddDevice(ctx, admin.ID, hashToken(res.Device), now); err != nil {
				return err
			}
		}
		sess := &tandem.AdminSession{
			TokenHash: hashToken(res.Token), AdminID: admin.ID,
			CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.cfg.SessionLifetime),
			ReauthAt: now, Address: req.Address, UserAgent: storableText(req.UserAgent, 256),
		}
		res.Session = sess
		res.Actor = sessionActor(admin, role, sess, req.Address)
		sess.MFAPassed = res.Actor.MFAOutstanding() == ""
		if err := tx.CreateAdminSession(ctx, sess); err != nil {
			return err
		}
		rec.ActorKind, rec.ActorID = tandem.ActorAdmin, admin.ID
		rec.TargetType, rec.TargetID = "admin", strconv.FormatInt(admin.ID, 10)
		return s.appendAudit(ctx, tx, rec)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Service) countLoginFailure(ctx context.Context, addrKey, acctKey string, knownDevice bool, now time.Time) {
	err := s.store.Update(ctx, func(tx tandem.Tx) error {
		if _, err := tx.HitRateLimit(ctx, addrKey, s.cfg.LoginWindow, now); err != nil {
			return err
		}
		if knownDevice {
			return nil
		}
		_, err := tx.HitRateLimit(ctx, acctKey, s.cfg.LoginWindow, now)
		return err
	})
	if err != nil {
		s.log.Error("login failure not counted", "err", err)
	}
}

func sessionActor(a *tandem.Admin, role *tandem.Role, sess *tandem.AdminSession, address string) *Actor {
	return &Actor{Kind: tandem.ActorAdmin, ID: a.ID, Name: a.Name, Address: address, Role: role, Admin: a, Session: sess}
}

// touchEvery is how stale LastSeenAt may get before a request writes it:
// idle expiry is measured in minutes, so most requests need no write.
const touchEvery = time.Minute

// Authenticate returns the actor of a session token. The admin and role are
// read afresh, so a changed role or a disabled admin counts from the next
// request.
func (s *Service) Authenticate(ctx context.Context, token, address string) (*Actor, error) {
	if token == "" {
		return nil, tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	now := s.now()
	var actor *Actor
	var expired bool
	err := s.store.View(ctx, func(tx tandem.Tx) error {
		sess, err := tx.AdminSession(ctx, hashToken(token))
		if err != nil {
			return err
		}
		if now.After(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) > s.cfg.SessionIdle {
			expired = true
			return nil
		}
		admin, err := tx.Admin(ctx, sess.AdminID)
		if err != nil {
			return err
		}
		role, err := tx.Role(ctx, admin.RoleID)
		if err != nil {
			return err
		}
		actor = sessionActor(admin, role, sess, address)
		return nil
	})
	if tandem.ErrorCodeOf(err) == tandem.ENotFound || expired {
		if expired {
			s.endSession(ctx, token)
		}
		return nil, tandem.Errorf(tandem.EUnauthenticated, "your session has ended; log in again")
	}
	if err != nil {
		return nil, err
	}
	if actor.Admin.Disabled {
		s.endSession(ctx, token)
		return nil, tandem.Errorf(tandem.EUnauthenticated, "your account is disabled")
	}
	if now.Sub(actor.Session.LastSeenAt) >= touchEvery {
		// Read afresh under the write lock and change LastSeenAt only, so
		// a concurrent MFA completion or password confirmation stays.
		err := s.store.Update(ctx, func(tx tandem.Tx) error {
			sess, err := tx.AdminSession(ctx, actor.Session.TokenHash)
			if err != nil {
				return err
			}
			sess.LastSeenAt = now
			actor.Session = sess
			return tx.UpdateAdminSession(ctx, sess)
		})
		if tandem.ErrorCodeOf(err) == tandem.ENotFound {
			return nil, tandem.Errorf(tandem.EUnauthenticated, "your session has ended; log in again")
		}
		if err != nil {
			return nil, err
		}
	}
	return actor, nil
}

func (s *Service) endSession(ctx context.Context, token string) {
	err := s.store.Update(ctx, func(tx tandem.Tx) error { return tx.DeleteAdminSession(ctx, hashToken(token)) })
	if err != nil && tandem.ErrorCodeOf(err) != tandem.ENotFound {
		s.log.Error("ending admin session", "err", err)
	}
}

// Logout ends the actor's session.
func (s *Service) Logout(ctx context.Context, a *Actor) error {
	if a == nil || a.Session == nil {
		return tandem.Errorf(tandem.EUnauthenticated, "not logged in")
	}
	return s.update(ctx, a, op{action: "session.logout", pending: true, targetType: "admin", targetID: idString(a.ID)},
		func(tx tandem.Tx, _ *tandem.AuditRecord) error {
			return tx.DeleteAdminSession(ctx, a.Session.TokenHash)
		})
}

// CompleteMFA passes the session's MFA challenge with a TOTP code or a
// recovery code. Each code works once.
func (s *Service) CompleteMFA(ctx context.Context, a *Actor, code string) error {
	if a == nil || a.Session == nil {
		return tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	if a.MFAOutstanding() != MFAChallenge {
		return tandem.Errorf(tandem.EConflict, "no two-factor code is asked of this session")
	}
	if err := s.countMFAAttempt(ctx, a); err != nil {
		return err
	}
	err := s.update(ctx, a, op{action: "session.mfa", pending: true, targetType: "admin", targetID: idString(a.ID)},
		func(tx tandem.Tx, rec *tandem.AuditRecord) error {
			if err := s.useSecondFactor(ctx, tx, a.Admin.ID, code, rec); err != nil {
				if tandem.ErrorCodeOf(err) == tandem.EUnauthenticated {
					// The session stays valid: a wrong code is a field error, not a logout.
					return tandem.Invalid([]tandem.FieldError{{Field: "code", Message: tandem.ErrorMessageOf(err)}})
				}
				return err
			}
			a.Session.MFAPassed = true
			return tx.UpdateAdminSession(ctx, a.Session)
		})
	return err
}

// useSecondFactor accepts a TOTP code once, or a recovery code once, for
// the admin as stored in tx (read afresh to see the last step accepted).
func (s *Service) useSecondFactor(ctx context.Context, tx tandem.Tx, adminID int64, code string, rec *tandem.AuditRecord) error {
	admin, err := tx.Admin(ctx, adminID)
	if err != nil {
		return err
	}
	if !admin.MFAEnabled() {
		return tandem.Errorf(tandem.EConflict, "two-factor authentication is not enrolled")
	}
	if isTOTPCode(code) {
		step, ok := matchTOTP(admin.MFASecret, code, s.cfg.Now(), admin.MFALastStep)
		if !ok {
			return tandem.Errorf(tandem.EUnauthenticated, "wrong or already used code")
		}
		admin.MFALastStep = step
		admin.UpdatedAt = s.now()
		return tx.UpdateAdmin(ctx, admin)
	}
	used, err := tx.UseRecoveryCode(ctx, adminID, hashRecoveryCode(code), s.now())
	if err != nil {
		return err
	}
	if !used {
		return tandem.Errorf(tandem.EUnauthenticated, "wrong or already used code")
	}
	rec.After = auditJSON(map[string]string{"factor": "recovery_code"})
	return nil
}

// Second-factor attempts are counted before they are checked, so
// parallel guesses cannot all slip under the limit: at most
// mfaAttemptsPerSession per session and mfaAttemptsPerAccount per admin
// within the login window. The per-session bound keeps whoever holds only
// the password from locking the owner out of their own session's challenge;
// the per-account bound keeps many sessions from guessing six digits in bulk.
const (
	mfaAttemptsPerSession = 10
	mfaAttemptsPerAccount = 50
)

func (s *Service) countMFAAttempt(ctx context.Context, a *Actor) error {
	var perSession, perAccount int
	err := s.store.Update(ctx, func(tx tandem.Tx) (err error) {
		now := s.now()
		if perSession, err = tx.HitRateLimit(ctx, fmt.Sprintf("mfa:session:%x", a.Session.TokenHash[:8]), s.cfg.LoginWindow, now); err != nil {
			return err
		}
		perAccount, err = tx.HitRateLimit(ctx, "mfa:admin:"+idString(a.ID), s.cfg.LoginWindow, now)
		return err
	})
	if err != nil {
		return err
	}
	if perSession > mfaAttemptsPerSession || perAccount > mfaAttemptsPerAccount {
		return s.rateLimited(s.now(), "too many two-factor attempts; try again later")
	}
	return nil
}

// Reauthenticate confirms the admin's password (and TOTP code, when
// enrolled) and opens the window for sensitive changes.
func (s *Service) Reauthenticate(ctx context.Context, a *Actor, password, code string) error {
	if a == nil || a.Session == nil {
		return tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	if err := s.countMFAAttempt(ctx, a); err != nil {
		return err
	}
	ok, err := s.passwords.verify(ctx, a.Admin.PasswordHash, password)
	if err != nil {
		return err
	}
	err = s.update(ctx, a, op{action: "session.reauth", targetType: "admin", targetID: idString(a.ID)},
		func(tx tandem.Tx, rec *tandem.AuditRecord) error {
			if !ok {
				return tandem.Invalid([]tandem.FieldError{{Field: "password", Message: "wrong password"}})
			}
			if a.Admin.MFAEnabled() {
				if err := s.useSecondFactor(ctx, tx, a.Admin.ID, code, rec); err != nil {
					return tandem.Invalid([]tandem.FieldError{{Field: "code", Message: tandem.ErrorMessageOf(err)}})
				}
			}
			a.Session.ReauthAt = s.now()
			return tx.UpdateAdminSession(ctx, a.Session)
		})
	return err
}

// ChangePassword changes the actor's own password and ends every session
// of theirs, this one too: whoever else knew the old password is out, and
// the browser logs in again with the new one.
func (s *Service) ChangePassword(ctx context.Context, a *Actor, current, next string) error {
	if a == nil || a.Session == nil {
		return tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	var fields []tandem.FieldError
	ok, err := s.passwords.verify(ctx, a.Admin.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		fields = append(fields, tandem.FieldError{Field: "current_password", Message: "wrong password"})
	}
	fields = append(fields, checkPassword("new_password", next, a.Admin.Name)...)
	var hash string
	if len(fields) == 0 {
		if hash, err = s.passwords.hash(ctx, next); err != nil {
			return err
		}
	}
	return s.update(ctx, a, op{action: "admin.password", targetType: "admin", targetID: idString(a.ID)},
		func(tx tandem.Tx, rec *tandem.AuditRecord) error {
			if err := tandem.Invalid(fields); err != nil {
				return err
			}
			admin, err := tx.Admin(ctx, a.ID)
			if err != nil {
				return err
			}
			admin.PasswordHash, admin.PasswordChangedAt, admin.UpdatedAt = hash, s.now(), s.now()
			if err := tx.UpdateAdmin(ctx, admin); err != nil {
				return err
			}
			n, err := tx.DeleteAdminSessions(ctx, a.ID, nil)
			rec.After = auditJSON(map[string]int{"sessions_ended": n})
			return err
		})
}

// AuthenticateAPIKey returns the actor of an admin API key.
func (s *Service) AuthenticateAPIKey(ctx context.Context, secret, address string) (*Actor, error) {
	now := s.now()
	var key *tandem.APIKey
	var role *tandem.Role
	err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
		if key, err = tx.APIKeyByHash(ctx, hashToken(secret)); err != nil {
			return err
		}
		role, err = tx.Role(ctx, key.RoleID)
		return err
	})
	if tandem.ErrorCodeOf(err) == tandem.ENotFound || (err == nil && key.Revoked()) {
		return nil, tandem.Errorf(tandem.EUnauthenticated, "unknown or revoked API key")
	}
	if err != nil {
		return nil, err
	}
	if now.Sub(key.LastUsedAt) >= touchEvery {
		// Read afresh under the write lock: writing back the copy read
		// above could undo a revocation made in between.
		err := s.store.Update(ctx, func(tx tandem.Tx) error {
			k, err := tx.APIKey(ctx, key.ID)
			if err != nil {
				return err
			}
			if k.Revoked() {
				return tandem.Errorf(tandem.EUnauthenticated, "unknown or revoked API key")
			}
			k.LastUsedAt = now
			return tx.UpdateAPIKey(ctx, k)
		})
		if err != nil {
			return nil, err
		}
	}
	return &Actor{Kind: tandem.ActorAPIKey, ID: key.ID, Name: key.Name, Address: address, Role: role, APIKey: key}, nil
}

func idString(id int64) string { return strconv.FormatInt(id, 10) }

// auditRefusedLogin audits a login refused by a limit once per address and
// window: a flood of refused attempts costs a counter each, not an audit
// record each.
func (s *Service) auditRefusedLogin(ctx context.Context, rec *tandem.AuditRecord, addrKey string, cause error) {
	var first bool
	err := s.store.Update(context.WithoutCancel(ctx), func(tx tandem.Tx) error {
		n, err := tx.HitRateLimit(ctx, "audited:"+addrKey, s.cfg.LoginWindow, rec.At)
		first = n == 1
		return err
	})
	if err != nil {
		s.log.Error("login refusal not counted", "err", err)
		return
	}
	if first {
		s.auditFailure(ctx, rec, cause)
	}
}

// addressKey is the unit login throttling counts by: an IPv4 address, or
// an IPv6 /64 (one subscriber's network: its addresses are free to rotate).
func addressKey(address string) string {
	a, err := netip.ParseAddr(address)
	if err != nil || a.Is4() || a.Is4In6() {
		return address
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// storableText makes client-supplied text fit for both databases: no NUL,
// valid UTF-8, at most n characters (a byte cut could split a character,
// and PostgreSQL refuses invalid UTF-8).
func storableText(s string, n int) string {
	return truncateRunes(strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "?"), n)
}

func truncateRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// rateLimited is a rate_limited error saying to retry when the login
// window that now falls in ends (windows start at multiples of the window
// since the Unix epoch, as the stores count them).
func (s *Service) rateLimited(now time.Time, msg string) error {
	w := s.cfg.LoginWindow
	return &tandem.Error{Code: tandem.ERateLimited, Message: msg, RetryAfter: windowEnd(now, w).Sub(now)}
}

// windowEnd is when the rate-limit window containing now ends. Windows
// start at multiples of w since the Unix epoch, as the stores count them
// (time.Truncate counts from year 1, which agrees only for windows that
// divide a day).
func windowEnd(now time.Time, w time.Duration) time.Time {
	us, wu := now.UnixMicro(), w.Microseconds()
	start := us - us%wu
	if us%wu < 0 {
		start -= wu
	}
	return time.UnixMicro(start + wu)
}
