package token_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/token"
)

// now is the fixed time every test verifies at.
var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func keyFromSeed(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

// fixture is a signer and a key set that trusts it.
type fixture struct {
	key    ed25519.PrivateKey
	signer *token.Signer
	keys   *token.KeySet
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	key := keyFromSeed(1)
	return fixture{
		key:    key,
		signer: token.NewSigner("k1", key),
		keys:   token.NewKeySet(map[string]ed25519.PublicKey{"k1": key.Public().(ed25519.PublicKey)}),
	}
}

func validClaims() tandem.Claims {
	return tandem.Claims{
		Subject:   "p-42",
		Name:      "Ada",
		Roles:     []string{"tester"},
		MM:        map[string]string{"region": "eu", "skill": "1200"},
		ID:        "0123456789abcdef0123456789abcdef",
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(5 * time.Minute).Unix(),
		Audience:  tandem.AudienceRealtime,
	}
}

var b64 = base64.RawURLEncoding

// signRaw builds a token from arbitrary header and claims JSON, correctly
// signed with key, so tests can reach the checks behind the signature.
func signRaw(key ed25519.PrivateKey, headerJSON, claimsJSON string) string {
	signed := b64.EncodeToString([]byte(headerJSON)) + "." + b64.EncodeToString([]byte(claimsJSON))
	return signed + "." + b64.EncodeToString(ed25519.Sign(key, []byte(signed)))
}

func claimsJSON(mutate func(m map[string]any)) string {
	c := validClaims()
	m := map[string]any{
		"kid": "k1", "sub": c.Subject, "name": c.Name, "roles": c.Roles, "mm": c.MM,
		"jti": c.ID, "iat": c.IssuedAt, "exp": c.ExpiresAt, "aud": c.Audience,
	}
	if mutate != nil {
		mutate(m)
	}
	return mustJSON(m)
}

func mustSign(t testing.TB, s *token.Signer, c tandem.Claims) string {
	t.Helper()
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

const goodHeader = `{"alg":"EdDSA","typ":"JWT","kid":"k1"}`

func TestIssueThenVerifyReturnsTheClaims(t *testing.T) {
	f := newFixture(t)
	p := tandem.Player{ID: "p-42", Name: "Ada", Roles: []string{"tester"}, MM: map[string]string{"region": "eu"}}

	tok, err := f.signer.Issue(p, now, 10*time.Minute)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	got, err := f.keys.Verify(tok, now.Add(time.Minute), tandem.AudienceRealtime)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}

	if len(got.ID) != 32 || strings.Trim(got.ID, "0123456789abcdef") != "" {
		t.Errorf("jti = %q, want 16 random bytes in hex", got.ID)
	}
	want := tandem.Claims{
		KeyID: "k1", Subject: "p-42", Name: "Ada", Roles: []string{"tester"}, MM: map[string]string{"region": "eu"},
		ID: got.ID, IssuedAt: now.Unix(), ExpiresAt: now.Add(10 * time.Minute).Unix(), Audience: tandem.AudienceRealtime,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
}

func TestTokenHasTheExactJWSHeader(t *testing.T) {
	f := newFixture(t)
	tok, err := f.signer.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	hdr, err := b64.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(hdr) != goodHeader {
		t.Errorf("header = %s, want %s", hdr, goodHeader)
	}
	if strings.Contains(tok, "=") {
		t.Errorf("token %q is padded", tok)
	}
}

func TestSignKeepsTheCallersTokenIDAndSetsTheKeyID(t *testing.T) {
	f := newFixture(t)
	c := validClaims()
	c.ID = "my-id"
	c.KeyID = "something-else"
	tok, err := f.signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.keys.Verify(tok, now, tandem.AudienceRealtime)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "my-id" || got.KeyID != "k1" {
		t.Errorf("jti, kid = %q, %q; want my-id, k1", got.ID, got.KeyID)
	}
}

func TestSignGivesEveryTokenANewID(t *testing.T) {
	f := newFixture(t)
	c := validClaims()
	c.ID = ""
	seen := map[string]bool{}
	for range 100 {
		tok, err := f.signer.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.keys.Verify(tok, now, tandem.AudienceRealtime)
		if err != nil {
			t.Fatal(err)
		}
		if seen[got.ID] {
			t.Fatalf("jti %q issued twice", got.ID)
		}
		seen[got.ID] = true
	}
}

func TestSignRefusesClaimsThatCanNeverVerify(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		mutate func(*tandem.Claims)
	}{
		{"no subject", func(c *tandem.Claims) { c.Subject = "" }},
		{"no audience", func(c *tandem.Claims) { c.Audience = "" }},
		{"no iat", func(c *tandem.Claims) { c.IssuedAt = 0 }},
		{"exp before iat", func(c *tandem.Claims) { c.ExpiresAt = c.IssuedAt - 1 }},
		{"exp equal to iat", func(c *tandem.Claims) { c.ExpiresAt = c.IssuedAt }},
		{"lifetime over the maximum", func(c *tandem.Claims) {
			c.ExpiresAt = c.IssuedAt + int64(tandem.MaxTokenLifetime/time.Second) + 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validClaims()
			tt.mutate(&c)
			if tok, err := f.signer.Sign(c); err == nil {
				t.Errorf("Sign = %q, want an error", tok)
			}
		})
	}
}

func TestIssueRefusesTTLsOutsideTheLifetime(t *testing.T) {
	f := newFixture(t)
	p := tandem.Player{ID: "p"}
	for _, ttl := range []time.Duration{0, -time.Second, tandem.MaxTokenLifetime + time.Second} {
		if _, err := f.signer.Issue(p, now, ttl); err == nil {
			t.Errorf("Issue with ttl %s succeeded, want an error", ttl)
		}
	}
	if _, err := f.signer.Issue(tandem.Player{}, now, time.Minute); err == nil {
		t.Errorf("Issue for a player without id succeeded, want an error")
	}
}

func TestVerifyAcceptsTheEdgesOfValidity(t *testing.T) {
	f := newFixture(t)
	c := validClaims()
	c.IssuedAt = now.Add(token.MaxClockSkew).Unix()
	c.ExpiresAt = c.IssuedAt + int64(tandem.MaxTokenLifetime/time.Second)
	tok, err := f.signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.keys.Verify(tok, now, tandem.AudienceRealtime); err != nil {
		t.Errorf("token issued MaxClockSkew ahead with the maximum lifetime: %v", err)
	}
	if _, err := f.keys.Verify(tok, time.Unix(c.ExpiresAt, 0).Add(-time.Nanosecond), tandem.AudienceRealtime); err != nil {
		t.Errorf("token a nanosecond before exp: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	other := keyFromSeed(2)
	good, err := f.signer.Sign(validClaims())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	withClaims := func(mutate func(m map[string]any)) string {
		return signRaw(f.key, goodHeader, claimsJSON(mutate))
	}
	withHeader := func(h string) string { return signRaw(f.key, h, claimsJSON(nil)) }
	exp := validClaims().ExpiresAt

	tests := []struct {
		name     string
		token    string
		at       time.Time
		audience string
		code     tandem.ErrorCode
		message  string
	}{
		// Shape.
		{name: "empty", token: "", message: "malformed"},
		{name: "one segment", token: parts[0], message: "malformed"},
		{name: "two segments", token: parts[0] + "." + parts[1], message: "malformed"},
		{name: "four segments", token: good + "." + parts[2], message: "malformed"},
		{name: "trailing dot", token: good + ".", message: "malformed"},
		{name: "too long", token: good + strings.Repeat("A", 9000), message: "too long"},

		// Encoding.
		{name: "padded signature", token: good + "==", message: "malformed"},
		{name: "standard base64 alphabet", token: parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+", message: "malformed"},
		{name: "newline in payload", token: parts[0] + "." + parts[1][:10] + "\n" + parts[1][10:] + "." + parts[2], message: "malformed"},
		{name: "space in header", token: " " + good, message: "malformed"},
		{name: "non-canonical trailing bits", token: parts[0] + "." + parts[1] + "." + flipLastBit(parts[2]), message: "malformed"},
		{name: "header not JSON", token: signRaw(f.key, "EdDSA", claimsJSON(nil)), message: "malformed"},
		{name: "claims not JSON", token: signRaw(f.key, goodHeader, "sub=p-42"), message: "claims are malformed"},
		{name: "claims of the wrong type", token: withClaims(func(m map[string]any) { m["exp"] = "soon" }), message: "claims are malformed"},
		{name: "fractional exp", token: withClaims(func(m map[string]any) { m["exp"] = float64(exp) + 0.5 }), message: "claims are malformed"},

		// Header.
		{name: "alg none", token: withHeader(`{"alg":"none","typ":"JWT","kid":"k1"}`), message: "algorithm"},
		{name: "alg HS256", token: withHeader(`{"alg":"HS256","typ":"JWT","kid":"k1"}`), message: "algorithm"},
		{name: "alg Ed25519", token: withHeader(`{"alg":"Ed25519","typ":"JWT","kid":"k1"}`), message: "algorithm"},
		{name: "no typ", token: withHeader(`{"alg":"EdDSA","kid":"k1"}`), message: "algorithm"},
		{name: "extra header parameter", token: withHeader(`{"alg":"EdDSA","typ":"JWT","kid":"k1","crit":["exp"]}`), message: "header"},
		{name: "reordered header", token: withHeader(`{"kid":"k1","alg":"EdDSA","typ":"JWT"}`), message: "header"},
		{name: "header with spaces", token: withHeader(`{"alg": "EdDSA","typ":"JWT","kid":"k1"}`), message: "header"},
		{name: "differently cased name", token: withHeader(`{"ALG":"EdDSA","typ":"JWT","kid":"k1"}`), message: "header"},
		{name: "duplicate alg", token: withHeader(`{"alg":"none","alg":"EdDSA","typ":"JWT","kid":"k1"}`), message: "header"},

		// Key and signature.
		{name: "unknown kid", token: signRaw(f.key, `{"alg":"EdDSA","typ":"JWT","kid":"k9"}`, claimsJSON(nil)), message: "unknown key"},
		{name: "empty kid", token: signRaw(f.key, `{"alg":"EdDSA","typ":"JWT","kid":""}`, claimsJSON(nil)), message: "unknown key"},
		{name: "signed by another key", token: mustSign(t, token.NewSigner("k1", other), validClaims()), message: "signature"},
		{name: "signature of another token", token: parts[0] + "." + parts[1] + "." + strings.Split(withClaims(func(m map[string]any) { m["sub"] = "p-43" }), ".")[2], message: "signature"},
		{name: "truncated signature", token: parts[0] + "." + parts[1] + "." + parts[2][:40], message: "signature"},
		{name: "empty signature", token: parts[0] + "." + parts[1] + ".", message: "signature"},
		{name: "tampered payload", token: parts[0] + "." + tamper(parts[1], `"sub":"p-42"`, `"sub":"p-43"`) + "." + parts[2], message: "signature"},
		{name: "tampered roles", token: parts[0] + "." + tamper(parts[1], `"roles":["tester"]`, `"roles":["admin"]`) + "." + parts[2], message: "signature"},
		{name: "claims kid differs from header", token: withClaims(func(m map[string]any) { m["kid"] = "k2" }), message: "key id"},

		// Audience.
		{name: "another audience", token: withClaims(func(m map[string]any) { m["aud"] = "tandem.web" }), message: "audience"},
		{name: "no audience", token: withClaims(func(m map[string]any) { delete(m, "aud") }), message: "audience"},
		{name: "caller expects another audience", token: good, audience: "tandem.admin", message: "audience"},

		// Claims.
		{name: "empty sub", token: withClaims(func(m map[string]any) { m["sub"] = "" }), message: "subject"},
		{name: "missing sub", token: withClaims(func(m map[string]any) { delete(m, "sub") }), message: "subject"},
		{name: "empty jti", token: withClaims(func(m map[string]any) { m["jti"] = "" }), message: "id"},
		{name: "lifetime over the maximum", token: withClaims(func(m map[string]any) {
			m["exp"] = validClaims().IssuedAt + int64(tandem.MaxTokenLifetime/time.Second) + 1
		}), message: "lifetime"},
		{name: "exp before iat", token: withClaims(func(m map[string]any) { m["exp"] = validClaims().IssuedAt - 1 }), message: "lifetime"},
		{name: "no iat", token: withClaims(func(m map[string]any) { delete(m, "iat") }), message: "lifetime"},
		{name: "overflowing lifetime", token: withClaims(func(m map[string]any) { m["iat"] = -1 << 62; m["exp"] = 1<<63 - 1 }), message: "lifetime"},

		// Time.
		{name: "issued beyond the clock skew", token: good, at: now.Add(-token.MaxClockSkew - time.Second), message: "not valid yet"},
		{name: "expired exactly at exp", token: good, at: time.Unix(exp, 0), code: tandem.ETokenExpired, message: "expired"},
		{name: "expired long ago", token: good, at: time.Unix(exp, 0).Add(24 * time.Hour), code: tandem.ETokenExpired, message: "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, audience, code := tt.at, tt.audience, tt.code
			if at.IsZero() {
				at = now
			}
			if audience == "" {
				audience = tandem.AudienceRealtime
			}
			if code == 0 {
				code = tandem.EUnauthenticated
			}
			claims, err := f.keys.Verify(tt.token, at, audience)
			var terr *tandem.Error
			if !errors.As(err, &terr) {
				t.Fatalf("Verify = %+v, %v; want a *tandem.Error", claims, err)
			}
			if terr.Code != code || !strings.Contains(terr.Message, tt.message) {
				t.Errorf("Verify error = %s %q, want %s containing %q", terr.Code, terr.Message, code, tt.message)
			}
			if diff := cmp.Diff(tandem.Claims{}, claims); diff != "" {
				t.Errorf("Verify returned claims with its error:\n%s", diff)
			}
		})
	}
}

func TestVerifyRefusesAnEmptyExpectedAudience(t *testing.T) {
	f := newFixture(t)
	c := validClaims()
	c.Audience = "x"
	tok, err := f.signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.keys.Verify(tok, now, ""); tandem.ErrorCodeOf(err) != tandem.EUnauthenticated {
		t.Errorf("Verify with no expected audience = %v, want unauthenticated", err)
	}
}

func TestVerifyErrorNeverRepeatsTheToken(t *testing.T) {
	f := newFixture(t)
	tok := signRaw(f.key, `{"alg":"EdDSA","typ":"JWT","kid":"<script>"}`, claimsJSON(nil))
	_, err := f.keys.Verify(tok, now, tandem.AudienceRealtime)
	if msg := tandem.ErrorMessageOf(err); strings.Contains(msg, "script") || strings.Contains(msg, "k1") {
		t.Errorf("error message %q repeats part of the token", msg)
	}
}

func TestKeySetFollowsKeyRotation(t *testing.T) {
	k1, k2 := keyFromSeed(1), keyFromSeed(2)
	s1, s2 := token.NewSigner("k1", k1), token.NewSigner("k2", k2)
	t1, t2 := mustSign(t, s1, validClaims()), mustSign(t, s2, validClaims())
	keys := token.NewKeySet(map[string]ed25519.PublicKey{"k1": s1.PublicKey()})

	check := func(step string, tok string, wantOK bool) {
		t.Helper()
		_, err := keys.Verify(tok, now, tandem.AudienceRealtime)
		if (err == nil) != wantOK {
			t.Errorf("%s: Verify = %v, want ok=%v", step, err, wantOK)
		}
	}
	check("before rotation, old key", t1, true)
	check("before rotation, new key", t2, false)

	keys.Add("k2", s2.PublicKey())
	check("during rollover, old key", t1, true)
	check("during rollover, new key", t2, true)

	keys.Remove("k1")
	check("after rollover, old key", t1, false)
	check("after rollover, new key", t2, true)

	keys.Replace(map[string]ed25519.PublicKey{"k1": s1.PublicKey()})
	check("after replace, old key", t1, true)
	check("after replace, new key", t2, false)
}

func TestKeySetCopiesTheKeysItIsGiven(t *testing.T) {
	f := newFixture(t)
	pub := f.signer.PublicKey()
	m := map[string]ed25519.PublicKey{"k1": pub}
	keys := token.NewKeySet(m)
	delete(m, "k1")
	tok := mustSign(t, f.signer, validClaims())
	if _, err := keys.Verify(tok, now, tandem.AudienceRealtime); err != nil {
		t.Errorf("Verify after the caller changed its map: %v", err)
	}
}

func TestKeySetIsSafeForConcurrentUse(t *testing.T) {
	f := newFixture(t)
	tok := mustSign(t, f.signer, validClaims())
	pub := f.signer.PublicKey()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				if i == 0 {
					f.keys.Add(fmt.Sprintf("extra-%d", j), pub)
					f.keys.Remove(fmt.Sprintf("extra-%d", j-1))
					continue
				}
				if _, err := f.keys.Verify(tok, now, tandem.AudienceRealtime); err != nil {
					t.Errorf("Verify while keys change: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewKeySetPanicsOnABadKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewKeySet with a 3-byte key did not panic")
		}
	}()
	token.NewKeySet(map[string]ed25519.PublicKey{"k": {1, 2, 3}})
}

func flipLastBit(seg string) string {
	// The signature is 64 bytes: 86 characters whose last one carries 4
	// unused low bits. Setting one keeps the bytes but changes the spelling.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|1])
}

func tamper(seg, old, new string) string {
	raw, err := b64.DecodeString(seg)
	if err != nil {
		panic(err)
	}
	if !strings.Contains(string(raw), old) {
		panic(fmt.Sprintf("claims %s do not contain %s", raw, old))
	}
	return b64.EncodeToString([]byte(strings.Replace(string(raw), old, new, 1)))
}

func TestSignRefusesATokenVerifyWouldRefuseForItsSize(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	s := token.NewSigner("k", key)
	mm := map[string]string{}
	for i := range 100 {
		mm[fmt.Sprintf("p%d", i)] = strings.Repeat("x", 100)
	}
	now := time.Now()
	_, err := s.Sign(tandem.Claims{Subject: "p", MM: mm, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(), Audience: tandem.AudienceRealtime})
	if tandem.ErrorCodeOf(err) != tandem.EInvalid {
		t.Fatalf("Sign of a 10 KiB token: %v, want invalid", err)
	}
}
