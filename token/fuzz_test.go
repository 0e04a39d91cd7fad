package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
)

// FuzzVerify feeds arbitrary strings to Verify. Whatever the input, Verify
// must not panic, must fail with a *tandem.Error of one of its two codes,
// and may succeed only for a token the fuzz signer really issued: Ed25519
// signatures and the one-spelling encoding leave no way to alter a token and
// keep it valid.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	valid := mustSign(f, fx.signer, validClaims())
	expired := func() string {
		c := validClaims()
		c.IssuedAt, c.ExpiresAt = now.Add(-time.Hour).Unix(), now.Add(-time.Hour+time.Minute).Unix()
		return mustSign(f, fx.signer, c)
	}()
	issued := map[string]bool{valid: true, expired: true}

	f.Add(valid)
	f.Add(expired)
	f.Add(signRaw(fx.key, `{"alg":"none","typ":"JWT","kid":"k1"}`, claimsJSON(nil)))
	f.Add(signRaw(fx.key, goodHeader, claimsJSON(func(m map[string]any) { m["aud"] = "other" })))
	f.Add(signRaw(fx.key, goodHeader, `{"sub":"p","exp":1e99}`))
	f.Add(strings.TrimSuffix(valid, valid[strings.LastIndexByte(valid, '.'):]))
	f.Add("eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0..")
	f.Add("..")
	f.Add("")

	f.Fuzz(func(t *testing.T, tok string) {
		claims, err := fx.keys.Verify(tok, now, tandem.AudienceRealtime)
		if err == nil {
			if !issued[tok] {
				t.Fatalf("Verify accepted a token that was never issued: %q (claims %+v)", tok, claims)
			}
			return
		}
		var terr *tandem.Error
		if !errors.As(err, &terr) {
			t.Fatalf("Verify error %v is not a *tandem.Error", err)
		}
		if terr.Code != tandem.EUnauthenticated && terr.Code != tandem.ETokenExpired {
			t.Fatalf("Verify error code %s, want unauthenticated or token_expired", terr.Code)
		}
		if terr.Code == tandem.ETokenExpired && !issued[tok] {
			t.Fatalf("Verify reported a forged token %q as merely expired", tok)
		}
	})
}
