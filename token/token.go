// Package token issues and verifies Tandem's realtime tokens: short-lived
// Ed25519-signed JWTs (JWS compact form, alg EdDSA) carrying tandem.Claims.
// The web server signs them with a Signer; realtime nodes hold only public
// keys in a KeySet and verify every token themselves.
//
// The format is written by hand with the standard library so that exactly
// one form is accepted: the header must be byte for byte
// {"alg":"EdDSA","typ":"JWT","kid":"..."}, every segment unpadded canonical
// base64url, and the claims must pass every check in Verify.
package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem"
)

// MaxClockSkew is how far in the future a token's iat may lie, to tolerate
// clocks of the web server and the realtime node that disagree a little.
const MaxClockSkew = 30 * time.Second

// maxTokenBytes bounds the work an unauthenticated client can cause: a real
// token (a few roles and matchmaking properties) is well under 1 KiB.
const maxTokenBytes = 8 << 10

// b64 is unpadded base64url that also refuses non-zero trailing bits, so a
// segment has exactly one accepted spelling.
var b64 = base64.RawURLEncoding.Strict()

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// encodedHeader is the first segment for kid. Verify re-encodes the header
// it receives the same way and demands identical bytes.
func encodedHeader(kid string) ([]byte, error) {
	return json.Marshal(header{Alg: "EdDSA", Typ: "JWT", Kid: kid})
}

// Signer signs realtime tokens with one Ed25519 private key.
type Signer struct {
	kid string
	key ed25519.PrivateKey
}

// NewSigner returns a Signer that names its key kid in every token. It
// panics if kid is empty or key is not an Ed25519 private key: both are
// programming errors, and keys read from files are checked when loaded.
func NewSigner(kid string, key ed25519.PrivateKey) *Signer {
	if kid == "" {
		panic("token: NewSigner with an empty key id")
	}
	if len(key) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("token: NewSigner with a %d-byte key, want %d", len(key), ed25519.PrivateKeySize))
	}
	return &Signer{kid: kid, key: key}
}

// KeyID returns the key id the Signer writes into its tokens.
func (s *Signer) KeyID() string { return s.kid }

// PublicKey returns the public half of the Signer's key.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Issue returns a realtime token for p, valid from now for ttl (at most
// tandem.MaxTokenLifetime, whole seconds).
func (s *Signer) Issue(p tandem.Player, now time.Time, ttl time.Duration) (string, error) {
	return s.Sign(tandem.Claims{
		Subject:   p.ID,
		Name:      p.Name,
		Roles:     p.Roles,
		MM:        p.MM,
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(ttl).Unix(),
		Audience:  tandem.AudienceRealtime,
	})
}

// Sign returns the token for c. It sets c.KeyID to the Signer's key id and
// fills an empty c.ID with 16 random bytes in hex. The caller sets iat, exp,
// aud and sub; Sign refuses claims that Verify would reject whatever the
// time (no subject, no audience, a lifetime that is not in (0,
// tandem.MaxTokenLifetime]).
func (s *Signer) Sign(c tandem.Claims) (string, error) {
	c.KeyID = s.kid
	if c.ID == "" {
		c.ID = newTokenID()
	}
	if err := checkClaims(c); err != nil {
		return "", err
	}
	hdr, err := encodedHeader(s.kid)
	if err != nil {
		return "", fmt.Errorf("token: encode header: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("token: encode claims: %w", err)
	}
	var b strings.Builder
	b.Grow(b64.EncodedLen(len(hdr)) + b64.EncodedLen(len(payload)) + b64.EncodedLen(ed25519.SignatureSize) + 2)
	b.WriteString(b64.EncodeToString(hdr))
	b.WriteByte('.')
	b.WriteString(b64.EncodeToString(payload))
	sig := ed25519.Sign(s.key, []byte(b.String()))
	b.WriteByte('.')
	b.WriteString(b64.EncodeToString(sig))
	if b.Len() > maxTokenBytes {
		// Verify would refuse it: a player with it could never connect.
		return "", tandem.Errorf(tandem.EInvalid, "token is %d bytes, longer than %d", b.Len(), maxTokenBytes)
	}
	return b.String(), nil
}

func newTokenID() string {
	var id [16]byte
	rand.Read(id[:]) // never fails; crashes the program if the OS has no randomness
	return hex.EncodeToString(id[:])
}

// KeySet holds the public keys realtime tokens may be signed with, by key id.
// It is safe for concurrent use; Add, Remove and Replace follow key
// rotation while Verify runs.
type KeySet struct {
	mu   sync.Mutex // serialises writers; readers use keys without locking
	keys atomic.Pointer[map[string]ed25519.PublicKey]
}

// NewKeySet returns a KeySet holding a copy of keys. It panics if a key is
// not an Ed25519 public key (see Add).
func NewKeySet(keys map[string]ed25519.PublicKey) *KeySet {
	k := &KeySet{}
	k.Replace(keys)
	return k
}

// Replace makes keys, copied, the whole set. It panics if a key id is empty
// or a key is not ed25519.PublicKeySize bytes.
func (k *KeySet) Replace(keys map[string]ed25519.PublicKey) {
	m := make(map[string]ed25519.PublicKey, len(keys))
	for kid, pub := range keys {
		m[kid] = checkedPublicKey(kid, pub)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys.Store(&m)
}

// Add adds or replaces the key named kid. It panics if kid is empty or pub
// is not ed25519.PublicKeySize bytes.
func (k *KeySet) Add(kid string, pub ed25519.PublicKey) {
	pub = checkedPublicKey(kid, pub)
	k.mu.Lock()
	defer k.mu.Unlock()
	m := maps.Clone(k.current())
	if m == nil {
		m = make(map[string]ed25519.PublicKey, 1)
	}
	m[kid] = pub
	k.keys.Store(&m)
}

// Remove forgets the key named kid; tokens signed with it stop verifying.
func (k *KeySet) Remove(kid string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := maps.Clone(k.current())
	delete(m, kid)
	k.keys.Store(&m)
}

func (k *KeySet) current() map[string]ed25519.PublicKey {
	if p := k.keys.Load(); p != nil {
		return *p
	}
	return nil
}

func (k *KeySet) key(kid string) (ed25519.PublicKey, bool) {
	pub, ok := k.current()[kid]
	return pub, ok
}

func checkedPublicKey(kid string, pub ed25519.PublicKey) ed25519.PublicKey {
	if kid == "" {
		panic("token: public key with an empty key id")
	}
	if len(pub) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("token: public key %q is %d bytes, want %d", kid, len(pub), ed25519.PublicKeySize))
	}
	return bytes.Clone(pub)
}

// Verify checks token and returns its claims. It accepts the token only if
// it is well formed, signed by a key of the set, meant for audience, and
// valid at now. The error is a *tandem.Error: ETokenExpired for a token
// whose lifetime is over, EUnauthenticated for anything else. Its message is
// safe to show to the client and never repeats the token.
func (k *KeySet) Verify(token string, now time.Time, audience string) (tandem.Claims, error) {
	if len(token) > maxTokenBytes {
		return tandem.Claims{}, unauthenticated("token is too long")
	}
	hdr64, rest, _ := strings.Cut(token, ".")
	payload64, sig64, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig64, ".") {
		return tandem.Claims{}, unauthenticated("token is malformed")
	}
	hdrJSON, err1 := decodeSegment(hdr64)
	payload, err2 := decodeSegment(payload64)
	sig, err3 := decodeSegment(sig64)
	if err1 != nil || err2 != nil || err3 != nil {
		return tandem.Claims{}, unauthenticated("token is malformed")
	}

	var h header
	if err := json.Unmarshal(hdrJSON, &h); err != nil {
		return tandem.Claims{}, unauthenticated("token is malformed")
	}
	if h.Alg != "EdDSA" || h.Typ != "JWT" {
		return tandem.Claims{}, unauthenticated("token algorithm is not supported")
	}
	// Only the exact header Sign writes is accepted: no extra parameters
	// (crit, jku, x5u...), no duplicate or differently cased names.
	if canonical, err := encodedHeader(h.Kid); err != nil || !bytes.Equal(canonical, hdrJSON) {
		return tandem.Claims{}, unauthenticated("token header is not supported")
	}
	pub, ok := k.key(h.Kid)
	if !ok {
		return tandem.Claims{}, unauthenticated("token is signed with an unknown key")
	}
	signed := token[:len(hdr64)+1+len(payload64)]
	if !ed25519.Verify(pub, []byte(signed), sig) {
		return tandem.Claims{}, unauthenticated("token signature is invalid")
	}

	// Unknown claims are ignored rather than refused so that a newer web
	// server can add one during a rolling deploy; the signature already
	// says the server wrote them.
	var c tandem.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return tandem.Claims{}, unauthenticated("token claims are malformed")
	}
	if c.KeyID != h.Kid {
		return tandem.Claims{}, unauthenticated("token key id does not match its header")
	}
	if audience == "" || c.Audience != audience {
		return tandem.Claims{}, unauthenticated("token is meant for another audience")
	}
	if err := checkClaims(c); err != nil {
		return tandem.Claims{}, unauthenticated(err.(*tandem.Error).Message)
	}
	if time.Unix(c.IssuedAt, 0).After(now.Add(MaxClockSkew)) {
		return tandem.Claims{}, unauthenticated("token is not valid yet")
	}
	if !now.Before(time.Unix(c.ExpiresAt, 0)) {
		return tandem.Claims{}, tandem.Errorf(tandem.ETokenExpired, "token has expired")
	}
	return c, nil
}

// checkClaims holds the rules that do not depend on the time of use, so Sign
// never issues a token Verify is bound to refuse.
func checkClaims(c tandem.Claims) error {
	switch {
	case c.Subject == "":
		return tandem.Errorf(tandem.EInvalid, "token has no subject")
	case c.Audience == "":
		return tandem.Errorf(tandem.EInvalid, "token has no audience")
	case c.ID == "":
		return tandem.Errorf(tandem.EInvalid, "token has no id")
	// Positive times keep exp-iat from overflowing.
	case c.IssuedAt <= 0 || c.ExpiresAt <= c.IssuedAt:
		return tandem.Errorf(tandem.EInvalid, "token lifetime is invalid")
	case c.ExpiresAt-c.IssuedAt > int64(tandem.MaxTokenLifetime/time.Second):
		return tandem.Errorf(tandem.EInvalid, "token lifetime is longer than %s", tandem.MaxTokenLifetime)
	}
	return nil
}

func unauthenticated(msg string) error {
	return &tandem.Error{Code: tandem.EUnauthenticated, Message: msg}
}

// decodeSegment decodes one unpadded base64url segment. The decoder alone
// would skip CR and LF; refusing every byte outside the alphabet keeps one
// spelling per token.
func decodeSegment(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("byte %d is not base64url", i)
		}
	}
	return b64.DecodeString(s)
}
