package service

import (
	"context"
	"crypto/sha256"
	"strconv"
	"time"

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
	rec := &tandem.AuditRecord{At: now, ActorKind: tandem.ActorAnonymous, ActorName: req.Name,
		Action: "session.login", Address: req.Address, Result: tandem.AuditOK}
	addrKey, acctKey := "login:addr:"+req.Address, "login:acct:"+req.Name

	var admin *tandem.Admin
	var knownDevice bool
	err := s.store.View(ctx, func(tx tandem.Tx) error {
		n, err := tx.RateLimitCount(ctx, addrKey, s.cfg.LoginWindow, now)
		if err != nil {
			return err
		}
		if n >= s.cfg.LoginFailuresPerAddress {
			return tandem.Errorf(tandem.ERateLimited, "too many failed logins from your address; try again later")
		}
		admin, err = tx.AdminByName(ctx, req.Name)
		if tandem.ErrorCodeOf(err) == tandem.ENotFound {
			return nil
		} else if err != nil {
			return err
		}
		if req.Device != "" {
			if knownDevice, err = tx.HasDevice(ctx, admin.ID, hashToken(req.Device)); err != nil {
				return err
			}
		}
		if !knownDevice {
			n, err := tx.RateLimitCount(ctx, acctKey, s.cfg.LoginWindow, now)
			if err != nil {
				return err
			}
			if n >= s.cfg.LoginFailuresPerAccount {
				return tandem.Errorf(tandem.ERateLimited, "too many failed logins for this account from new browsers; try again later or use a browser you logged in with before")
			}
		}
		return nil
	})
	if err != nil {
		if tandem.ErrorCodeOf(err) == tandem.ERateLimited {
			s.auditFailure(ctx, rec, err)
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
			ReauthAt: now, Address: req.Address, UserAgent: truncate(req.UserAgent, 256),
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
		actor.Session.LastSeenAt = now
		if err := s.store.Update(ctx, func(tx tandem.Tx) error { return tx.UpdateAdminSession(ctx, actor.Session) }); err != nil {
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
	if err := s.checkMFAAttempts(ctx, a); err != nil {
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
	if tandem.ErrorCodeOf(err) == tandem.EValidation {
		s.countMFAFailure(ctx, a)
	}
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

// mfaAttemptsPerWindow bounds wrong second factors per admin per login
// window: six digits must not be guessable in bulk.
const mfaAttemptsPerWindow = 10

func (s *Service) checkMFAAttempts(ctx context.Context, a *Actor) error {
	var n int
	err := s.store.View(ctx, func(tx tandem.Tx) (err error) {
		n, err = tx.RateLimitCount(ctx, "mfa:"+idString(a.ID), s.cfg.LoginWindow, s.now())
		return err
	})
	if err != nil {
		return err
	}
	if n >= mfaAttemptsPerWindow {
		return tandem.Errorf(tandem.ERateLimited, "too many wrong codes; try again later")
	}
	return nil
}

func (s *Service) countMFAFailure(ctx context.Context, a *Actor) {
	// The failed transaction rolled back, so the count goes in its own.
	ctx = context.WithoutCancel(ctx)
	err := s.store.Update(ctx, func(tx tandem.Tx) error {
		_, err := tx.HitRateLimit(ctx, "mfa:"+idString(a.ID), s.cfg.LoginWindow, s.now())
		return err
	})
	if err != nil {
		s.log.Error("mfa failure not counted", "err", err)
	}
}

// Reauthenticate confirms the admin's password (and TOTP code, when
// enrolled) and opens the window for sensitive changes.
func (s *Service) Reauthenticate(ctx context.Context, a *Actor, password, code string) error {
	if a == nil || a.Session == nil {
		return tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	if err := s.checkMFAAttempts(ctx, a); err != nil {
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
	if tandem.ErrorCodeOf(err) == tandem.EValidation {
		s.countMFAFailure(ctx, a)
	}
	return err
}

// ChangePassword changes the actor's own password and ends every other
// session of theirs.
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
			n, err := tx.DeleteAdminSessions(ctx, a.ID, a.Session.TokenHash)
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
		key.LastUsedAt = now
		if err := s.store.Update(ctx, func(tx tandem.Tx) error { return tx.UpdateAPIKey(ctx, key) }); err != nil {
			return nil, err
		}
	}
	return &Actor{Kind: tandem.ActorAPIKey, ID: key.ID, Name: key.Name, Address: address, Role: role, APIKey: key}, nil
}

func idString(id int64) string { return strconv.FormatInt(id, 10) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
