package token_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/token"
)

// pubFromSeed returns the public key of keyFromSeed(seed) and its key id.
func pubFromSeed(seed byte) (string, ed25519.PublicKey) {
	pub := keyFromSeed(seed).Public().(ed25519.PublicKey)
	return token.KeyID(pub), pub
}

// jwkJSON is one Ed25519 entry as MarshalJWKS writes it, with the given
// members replaced ("" values are dropped).
func jwkJSON(pub ed25519.PublicKey, edit map[string]string) string {
	m := map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": token.KeyID(pub), "x": b64.EncodeToString(pub)}
	for k, v := range edit {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return mustJSON(m)
}

func TestMarshalJWKSWritesSortedEd25519Entries(t *testing.T) {
	kid1, pub1 := pubFromSeed(1)
	kid2, pub2 := pubFromSeed(2)
	got, err := token.MarshalJWKS(map[string]ed25519.PublicKey{kid1: pub1, kid2: pub2})
	if err != nil {
		t.Fatal(err)
	}
	entry := func(kid string, pub ed25519.PublicKey) string {
		return fmt.Sprintf(`{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":%q,"x":%q}`, kid, b64.EncodeToString(pub))
	}
	want := `{"keys":[` + entry(kid1, pub1) + "," + entry(kid2, pub2) + `]}`
	if kid2 < kid1 {
		want = `{"keys":[` + entry(kid2, pub2) + "," + entry(kid1, pub1) + `]}`
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("JWKS (-want +got):\n%s", diff)
	}

	empty, err := token.MarshalJWKS(nil)
	if err != nil || string(empty) != `{"keys":[]}` {
		t.Errorf("MarshalJWKS(nil) = %s, %v; want {\"keys\":[]}", empty, err)
	}
}

func TestMarshalJWKSThenParseJWKSGivesTheKeysBack(t *testing.T) {
	keys := map[string]ed25519.PublicKey{}
	for seed := byte(1); seed <= 3; seed++ {
		kid, pub := pubFromSeed(seed)
		keys[kid] = pub
	}
	b, err := token.MarshalJWKS(keys)
	if err != nil {
		t.Fatal(err)
	}
	got, err := token.ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(keys, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestMarshalJWKSRefusesAKeyIDThatIsNotDerivedFromItsKey(t *testing.T) {
	_, pub := pubFromSeed(1)
	for name, keys := range map[string]map[string]ed25519.PublicKey{
		"foreign kid": {"k1": pub},
		"short key":   {token.KeyID(pub): pub[:31]},
	} {
		if _, err := token.MarshalJWKS(keys); err == nil {
			t.Errorf("%s: MarshalJWKS succeeded, want an error", name)
		}
	}
}

func TestParseJWKSSkipsKeysOfAnotherKind(t *testing.T) {
	kid, pub := pubFromSeed(1)
	doc := `{"keys":[
		{"kty":"RSA","kid":"r1","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"},
		{"kty":"OKP","crv":"X25519","kid":"x1","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"},
		{"kty":"OKP","crv":"Ed448","kid":"e1","x":123},
		{"kty":"EC","crv":"P-256","kid":"p1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
		` + jwkJSON(pub, nil) + `
	],"extra":true}`
	got, err := token.ParseJWKS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]ed25519.PublicKey{kid: pub}, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestParseJWKSAcceptsAnEntryWithoutAlgAndUse(t *testing.T) {
	kid, pub := pubFromSeed(1)
	got, err := token.ParseJWKS([]byte(`{"keys":[` + jwkJSON(pub, map[string]string{"alg": "", "use": ""}) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]ed25519.PublicKey{kid: pub}, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestParseJWKSRefuses(t *testing.T) {
	_, pub := pubFromSeed(1)
	_, other := pubFromSeed(2)
	x := b64.EncodeToString(pub)
	one := func(edit map[string]string) string { return `{"keys":[` + jwkJSON(pub, edit) + `]}` }
	tests := []struct{ name, doc string }{
		{"not JSON", `{"keys":[`},
		{"not an object", `[]`},
		{"null", `null`},
		{"no keys", `{}`},
		{"keys null", `{"keys":null}`},
		{"keys not an array", `{"keys":{}}`},
		{"entry not an object", `{"keys":["OKP"]}`},
		{"entry null", `{"keys":[null]}`},
		{"no kty", one(map[string]string{"kty": ""})},
		{"kty not a string", `{"keys":[{"kty":1,"crv":"Ed25519"}]}`},
		{"crv not a string", `{"keys":[{"kty":"OKP","crv":null}]}`},
		{"no x", one(map[string]string{"x": ""})},
		{"x padded", one(map[string]string{"x": x + "="})},
		{"x with a standard base64 character", one(map[string]string{"x": x[:10] + "+" + x[11:]})},
		{"x with a newline", one(map[string]string{"x": x[:20] + "\n" + x[20:]})},
		{"x 31 bytes", one(map[string]string{"x": b64.EncodeToString(pub[:31])})},
		{"x 33 bytes", one(map[string]string{"x": b64.EncodeToString(append(pub[:32:32], 0))})},
		{"x with non-zero trailing bits", one(map[string]string{"x": x[:42] + string(x[42]+1)})},
		{"x not a string", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"` + token.KeyID(pub) + `","x":["` + x + `"]}]}`},
		{"no kid", one(map[string]string{"kid": ""})},
		{"kid of another key", one(map[string]string{"kid": token.KeyID(other)})},
		{"kid upper case", one(map[string]string{"kid": strings.ToUpper(token.KeyID(pub))})},
		{"kid under another name", strings.Replace(one(nil), `"kid"`, `"KID"`, 1)},
		{"alg of another algorithm", one(map[string]string{"alg": "RS256"})},
		{"use for encryption", one(map[string]string{"use": "enc"})},
		{"private key published", one(map[string]string{"d": b64.EncodeToString(keyFromSeed(1).Seed())})},
		{"duplicate key", `{"keys":[` + jwkJSON(pub, nil) + "," + jwkJSON(pub, map[string]string{"alg": ""}) + `]}`},
		{"longer than 1 MiB", `{"keys":[` + jwkJSON(pub, nil) + `],"pad":"` + strings.Repeat("a", token.MaxJWKSBytes) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := token.ParseJWKS([]byte(tt.doc))
			if err == nil {
				t.Fatalf("ParseJWKS succeeded with %v, want an error", keys)
			}
			var terr *tandem.Error
			if !errors.As(err, &terr) || terr.Code != tandem.EInvalid {
				t.Errorf("error %v is not a *tandem.Error with code invalid", err)
			}
		})
	}
}

// FuzzParseJWKS feeds arbitrary documents to ParseJWKS. It must not panic;
// it fails only with an invalid *tandem.Error; and whatever it accepts is
// Ed25519 keys under their own key ids that MarshalJWKS writes back into a
// document parsing to the same keys.
func FuzzParseJWKS(f *testing.F) {
	_, pub1 := pubFromSeed(1)
	_, pub2 := pubFromSeed(2)
	f.Add([]byte(`{"keys":[` + jwkJSON(pub1, nil) + "," + jwkJSON(pub2, nil) + `]}`))
	f.Add([]byte(`{"keys":[` + jwkJSON(pub1, map[string]string{"kid": "k1"}) + `]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},` + jwkJSON(pub1, map[string]string{"alg": ""}) + `]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519"}]}`))
	f.Add([]byte(`null`))

	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := token.ParseJWKS(doc)
		if err != nil {
			var terr *tandem.Error
			if !errors.As(err, &terr) || terr.Code != tandem.EInvalid {
				t.Fatalf("error %v is not a *tandem.Error with code invalid", err)
			}
			return
		}
		for kid, pub := range keys {
			if len(pub) != ed25519.PublicKeySize || kid != token.KeyID(pub) {
				t.Fatalf("accepted key %q of %d bytes whose key id is %s", kid, len(pub), token.KeyID(pub))
			}
		}
		again, err := token.MarshalJWKS(keys)
		if err != nil {
			t.Fatalf("MarshalJWKS of accepted keys: %v", err)
		}
		back, err := token.ParseJWKS(again)
		if err != nil {
			t.Fatalf("ParseJWKS of MarshalJWKS output: %v", err)
		}
		if diff := cmp.Diff(keys, back); diff != "" {
			t.Fatalf("keys after a round trip (-first +second):\n%s", diff)
		}
	})
}
