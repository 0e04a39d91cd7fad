package service

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tandemhq/tandem"
)

// newPlayerID returns a UUID version 7 (RFC 9562): 48 bits of Unix
// milliseconds then random bits, so ids sort by creation and index well.
func newPlayerID(now time.Time) string {
	var b [16]byte
	rand.Read(b[:])
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(now.UnixMilli()))
	copy(b[:6], ms[2:])
	b[6] = b[6]&0x0f | 0x70 // version 7
	b[8] = b[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var playerIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// isPlayerID reports whether id has the form newPlayerID gives, so text
// that is not an id never reaches a query or the audit log.
func isPlayerID(id string) bool { return playerIDRE.MatchString(id) }

// checkPlayerID is ENotFound for anything that cannot be a player id.
func checkPlayerID(id string) error {
	if !isPlayerID(id) {
		return tandem.Errorf(tandem.ENotFound, "no such player")
	}
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// deriveKey derives a key for one purpose from the key encryption key
// (nil when there is none).
func deriveKey(kek []byte, purpose string) []byte {
	if len(kek) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, kek)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// deviceHash names a device in sessions and bans by an HMAC of its id
// under a key derived from the key encryption key, nil for none: a ban
// outlives the account's deletion without the device id, and the id
// cannot be confirmed from the database alone.
func (s *Service) deviceHash(deviceID string) []byte {
	if deviceID == "" {
		return nil
	}
	m := hmac.New(sha256.New, s.deviceKey)
	m.Write([]byte(deviceID))
	return m.Sum(nil)
}

// limit is one rate-limit counter and its maximum.
type limit struct {
	key string
	max int
}

// limitName names a counter by a keyed hash of what it counts, so the
// counters table holds no address, device id or email.
func (s *Service) limitName(kind, value string) string {
	m := hmac.New(sha256.New, s.limitKey)
	m.Write([]byte(value))
	return "player:" + kind + ":" + hex.EncodeToString(m.Sum(nil)[:12])
}

func (s *Service) addressLimit(address string) limit {
	return limit{s.limitName("addr", addressKey(address)), s.cfg.Players.LimitPerAddress}
}

// deviceLimit counts failures naming a device id from one address (none
// counts nothing): keyed by both, so guesses from elsewhere cannot lock the
// device itself out.
func (s *Service) deviceLimit(deviceID, address string) limit {
	if deviceID == "" {
		return limit{}
	}
	return limit{s.limitName("device", deviceID+"\x00"+addressKey(address)), s.cfg.Players.LimitPerDevice}
}

func (s *Service) accountLimit(email string) limit {
	return limit{s.limitName("acct", email), s.cfg.Players.LimitPerAccount}
}

func (s *Service) playerLimit(playerID string) limit {
	return limit{"player:id:" + playerID, s.cfg.Players.LimitPerAccount}
}

// hitLimits counts one call against each limit in a transaction of its own
// (so the counters' rows are locked only briefly) and refuses the call
// when any is over its maximum.
func (s *Service) hitLimits(ctx context.Context, now time.Time, limits ...limit) error {
	if s.limitKey == nil {
		return errNoKEK
	}
	var over error
	err := s.store.Update(ctx, func(tx tandem.Tx) error {
		over = s.hitLimitsTx(ctx, tx, now, limits...)
		if tandem.ErrorCodeOf(over) == tandem.ERateLimited {
			return nil // the hits count even when refused
		}
		return over
	})
	if err != nil {
		return err
	}
	return over
}

// hitLimitsTx counts one call against each limit in tx.
func (s *Service) hitLimitsTx(ctx context.Context, tx tandem.Tx, now time.Time, limits ...limit) error {
	for _, l := range limits {
		if l.key == "" {
			continue
		}
		n, err := tx.HitRateLimit(ctx, l.key, s.cfg.Players.LimitWindow, now)
		if err != nil {
			return err
		}
		if n > l.max {
			return s.limited(now)
		}
	}
	return nil
}

// checkLimitsTx refuses a call when a limit of failures is used up,
// without counting the call: only failures count against an account or a
// device, so nobody can lock a player out by calling in their name. It
// runs in the login's own read transaction.
func (s *Service) checkLimitsTx(ctx context.Context, tx tandem.Tx, now time.Time, limits ...limit) error {
	if s.limitKey == nil {
		return errNoKEK
	}
	for _, l := range limits {
		if l.key == "" {
			continue
		}
		n, err := tx.RateLimitCount(ctx, l.key, s.cfg.Players.LimitWindow, now)
		if err != nil {
			return err
		}
		if n >= l.max {
			return s.limited(now)
		}
	}
	return nil
}

// countFailure counts a failed attempt against each limit. Losing a count
// to a database error only loosens the limit: it is logged, not returned.
func (s *Service) countFailure(ctx context.Context, now time.Time, limits ...limit) {
	err := s.store.Update(context.WithoutCancel(ctx), func(tx tandem.Tx) error {
		for _, l := range limits {
			if l.key == "" {
				continue
			}
			if _, err := tx.HitRateLimit(ctx, l.key, s.cfg.Players.LimitWindow, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("player login failure not counted", "err", err)
	}
}

func (s *Service) limited(now time.Time) error {
	return &tandem.Error{Code: tandem.ERateLimited, Message: "too many attempts; try again later",
		RetryAfter: windowEnd(now, s.cfg.Players.LimitWindow).Sub(now)}
}

// normalizeEmail trims an email and lower-cases it: one account per
// address whatever the case it is typed in.
func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func checkEmail(field, email string) []tandem.FieldError {
	local, domain, ok := strings.Cut(email, "@")
	switch {
	case email == "":
		return []tandem.FieldError{{Field: field, Message: "is required"}}
	case len(email) > maxEmailLen || !validText(email):
		return []tandem.FieldError{{Field: field, Message: "is not a valid email address"}}
	case !ok || local == "" || domain == "" || strings.ContainsAny(email, " \t\r\n<>()[],;:\\\"") ||
		strings.Contains(domain, "@") || !strings.Contains(domain, ".") || strings.HasSuffix(domain, "."):
		return []tandem.FieldError{{Field: field, Message: "is not a valid email address"}}
	}
	return nil
}

// checkPlayerPassword: players choose shorter passwords than admins (NIST
// SP 800-63B's minimum of 8), bounded above so hashing stays cheap.
func checkPlayerPassword(field, password, email string) []tandem.FieldError {
	n := utf8.RuneCountInString(password)
	switch {
	case n < minPlayerPassword:
		return []tandem.FieldError{{Field: field, Message: fmt.Sprintf("use at least %d characters", minPlayerPassword)}}
	case n > maxPasswordLen:
		return []tandem.FieldError{{Field: field, Message: fmt.Sprintf("use at most %d characters", maxPasswordLen)}}
	case email != "" && strings.EqualFold(password, email):
		return []tandem.FieldError{{Field: field, Message: "must not be the email"}}
	}
	return nil
}

// checkDeviceID: a device id is the client's own name for the device: 1 to
// 128 printable ASCII characters.
func checkDeviceID(field, id string, required bool) []tandem.FieldError {
	if id == "" {
		if required {
			return []tandem.FieldError{{Field: field, Message: "is required"}}
		}
		return nil
	}
	if len(id) > maxDeviceIDLen {
		return []tandem.FieldError{{Field: field, Message: fmt.Sprintf("use at most %d characters", maxDeviceIDLen)}}
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return []tandem.FieldError{{Field: field, Message: "use printable ASCII characters without spaces"}}
		}
	}
	return nil
}

// isSecret reports whether s looks like at least 128 random bits in
// base64url (hex is a subset).
func isSecret(s string) bool {
	if len(s) < minSecretLen || len(s) > maxSecretLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var localeRE = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)

func isLocale(s string) bool { return len(s) <= maxLocaleLen && localeRE.MatchString(s) }

// checkAvatarURL accepts only absolute https URLs (http for localhost), so
// a client showing it never loads javascript: or data: URLs.
func checkAvatarURL(field, s string) []tandem.FieldError {
	u, err := url.Parse(s)
	switch {
	case len(s) > maxAvatarURLLen || !validText(s):
		return []tandem.FieldError{{Field: field, Message: fmt.Sprintf("use at most %d characters", maxAvatarURLLen)}}
	case err != nil || u.Host == "" || u.User != nil:
		return []tandem.FieldError{{Field: field, Message: "must be an absolute https URL"}}
	case u.Scheme == "https", u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1"):
		return nil
	}
	return []tandem.FieldError{{Field: field, Message: "must be an absolute https URL"}}
}

// mmKey is a matchmaking property name: lower-case words a query can name.
var mmKey = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,31}$`)

const (
	maxMMProps    = 32
	maxMMValueLen = 128
)

// maxMMBytes bounds the encoded properties: they ride in every realtime
// token, which nodes refuse beyond 8 KiB.
const maxMMBytes = 2048

func checkMM(field string, mm map[string]string) []tandem.FieldError {
	var fields []tandem.FieldError
	size := 0
	for k, v := range mm {
		size += len(k) + len(v) + 6 // quotes, colon, comma
	}
	if len(mm) > maxMMProps || size > maxMMBytes {
		fields = append(fields, tandem.FieldError{Field: field, Message: fmt.Sprintf("at most %d properties of %d bytes in all", maxMMProps, maxMMBytes)})
	}
	for k, v := range mm {
		switch {
		case !mmKey.MatchString(k):
			fields = append(fields, tandem.FieldError{Field: field + "." + storableText(k, 40),
				Message: "a property name is 1 to 32 characters: a-z first, then a-z 0-9 _ . -"})
		case utf8.RuneCountInString(v) > maxMMValueLen || !validText(v) || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			fields = append(fields, tandem.FieldError{Field: field + "." + k, Message: fmt.Sprintf("use at most %d printable characters", maxMMValueLen)})
		}
	}
	// Map order is random; the answer is not.
	slices.SortFunc(fields, func(a, b tandem.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return fields
}
