package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/tandemhq/tandem"
)

// TOTP is RFC 6238 with the parameters every authenticator app supports:
// SHA-1, six digits, 30-second steps; a code of the step before or after
// the current one is accepted too, for clock drift.
const (
	totpPeriod = 30
	totpSkew   = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

func isTOTPCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// matchTOTP returns the time step whose code equals code, if that step is
// later than lastStep: a code is accepted once, and never one older than a
// code already used.
func matchTOTP(secret, code string, now time.Time, lastStep int64) (int64, bool) {
	current := now.Unix() / totpPeriod
	for step := current - totpSkew; step <= current+totpSkew; step++ {
		if step <= lastStep {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// recoveryCodeCount is how many recovery codes an enrolment hands out.
const recoveryCodeCount = 10

// newRecoveryCodes returns codes such as "k3m9q-7xw2p" (50 random bits each).
func newRecoveryCodes() []string {
	enc := base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)
	codes := make([]string, recoveryCodeCount)
	for i := range codes {
		b := make([]byte, 7)
		rand.Read(b)
		s := enc.EncodeToString(b)[:10]
		codes[i] = s[:5] + "-" + s[5:]
	}
	return codes
}

// hashRecoveryCode hashes a recovery code as typed, ignoring case, spaces
// and dashes.
func hashRecoveryCode(code string) []byte {
	norm := strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, code)
	sum := sha256.Sum256([]byte(norm))
	return sum[:]
}

// MFAEnrolment is a TOTP secret offered to the admin, to scan or type into
// an authenticator app.
type MFAEnrolment struct {
	Secret string
	URL    string // otpauth:// URL, the QR code's content
}

func (s *Service) enrolOp(a *Actor, action string) op {
	// The first enrolment is part of the first login: allowed while MFA is
	// outstanding, with no confirmation. Replacing an enrolled factor is a
	// sensitive change of a session that has passed MFA: otherwise the
	// password alone would let anyone swap in their own authenticator.
	enrolled := a != nil && a.Admin != nil && a.Admin.MFAEnabled()
	return op{action: action, pending: !enrolled, reauth: enrolled, targetType: "admin", targetID: idString(a.ID)}
}

// pendingFor returns the admin's pending enrolment secret, refusing a
// session that still owes its MFA challenge.
func pendingFor(a *Actor) (string, error) {
	if a == nil || a.Admin == nil {
		return "", tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	if a.MFAOutstanding() == MFAChallenge {
		return "", tandem.Errorf(tandem.EMFARequired, "enter your two-factor code first")
	}
	if a.Admin.MFAPending == "" {
		return "", tandem.Errorf(tandem.ENotFound, "no enrolment is in progress")
	}
	return a.Admin.MFAPending, nil
}

// BeginMFAEnrolment offers a new TOTP secret. It replaces the enrolled one
// only once ConfirmMFAEnrolment gets a code from it.
func (s *Service) BeginMFAEnrolment(ctx context.Context, a *Actor) (*MFAEnrolment, error) {
	if a == nil || a.Session == nil {
		return nil, tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	var out *MFAEnrolment
	err := s.update(ctx, a, s.enrolOp(a, "mfa.begin"), func(tx tandem.Tx, _ *tandem.AuditRecord) error {
		key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.MFAIssuer, AccountName: a.Admin.Name,
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return err
		}
		admin, err := tx.Admin(ctx, a.ID)
		if err != nil {
			return err
		}
		admin.MFAPending, admin.UpdatedAt = key.Secret(), s.now()
		out = &MFAEnrolment{Secret: key.Secret(), URL: key.URL()}
		a.Admin.MFAPending = admin.MFAPending
		return tx.UpdateAdmin(ctx, admin)
	})
	return out, err
}

// PendingMFA returns the enrolment offered by BeginMFAEnrolment, for the
// page that shows it (its QR code and secret).
func (s *Service) PendingMFA(a *Actor) (*MFAEnrolment, error) {
	secret, err := pendingFor(a)
	if err != nil {
		return nil, err
	}
	key, err := pendingKey(s.cfg.MFAIssuer, a.Admin.Name, secret)
	if err != nil {
		return nil, err
	}
	return &MFAEnrolment{Secret: key.Secret(), URL: key.URL()}, nil
}

// PendingMFAQRCode renders the pending enrolment's otpauth URL as a PNG.
func (s *Service) PendingMFAQRCode(a *Actor) ([]byte, error) {
	secret, err := pendingFor(a)
	if err != nil {
		return nil, err
	}
	key, err := pendingKey(s.cfg.MFAIssuer, a.Admin.Name, secret)
	if err != nil {
		return nil, err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pendingKey rebuilds the otp.Key of a stored secret. It is built from its
// parts rather than parsed from a URL, so an admin name with URL syntax in
// it cannot change the key.
func pendingKey(issuer, account, secret string) (*otp.Key, error) {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		return nil, err
	}
	return totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Secret: raw})
}

// ConfirmMFAEnrolment checks a code from the pending secret, makes it the
// admin's factor and returns fresh recovery codes (shown once; only hashes
// are kept). The session counts as having passed MFA.
func (s *Service) ConfirmMFAEnrolment(ctx context.Context, a *Actor, code string) ([]string, error) {
	if a == nil || a.Session == nil {
		return nil, tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	if err := s.countMFAAttempt(ctx, a); err != nil {
		return nil, err
	}
	codes := newRecoveryCodes()
	err := s.update(ctx, a, s.enrolOp(a, "mfa.enrol"), func(tx tandem.Tx, _ *tandem.AuditRecord) error {
		admin, err := tx.Admin(ctx, a.ID)
		if err != nil {
			return err
		}
		if admin.MFAPending == "" {
			return tandem.Errorf(tandem.EConflict, "no enrolment is in progress; start again")
		}
		step, ok := matchTOTP(admin.MFAPending, strings.TrimSpace(code), s.cfg.Now(), 0)
		if !ok {
			return tandem.Invalid([]tandem.FieldError{{Field: "code", Message: "wrong code; check the time on your device"}})
		}
		admin.MFASecret, admin.MFAPending, admin.MFALastStep, admin.UpdatedAt = admin.MFAPending, "", step, s.now()
		if err := tx.UpdateAdmin(ctx, admin); err != nil {
			return err
		}
		hashes := make([][]byte, len(codes))
		for i, c := range codes {
			hashes[i] = hashRecoveryCode(c)
		}
		if err := tx.ReplaceRecoveryCodes(ctx, a.ID, hashes); err != nil {
			return err
		}
		a.Admin, a.Session.MFAPassed = admin, true
		return tx.UpdateAdminSession(ctx, a.Session)
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}
