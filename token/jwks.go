package token

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"maps"
	"slices"

	"github.com/tandemhq/tandem"
)

// MaxJWKSBytes bounds a JWKS document: ParseJWKS refuses a longer one, and
// JWKSFetcher stops reading there. The web server publishes two or three
// keys of about 150 bytes each.
const MaxJWKSBytes = 1 << 20

// jwk is one Ed25519 public key as MarshalJWKS writes it (RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	X   string `json:"x"`
}

// MarshalJWKS returns keys as a JWK Set, {"keys":[...]}, each entry
// {"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":...,"x":...}
// in order of kid, so the same keys always give the same bytes. Every kid
// must be KeyID of its key, the form ParseJWKS accepts.
func MarshalJWKS(keys map[string]ed25519.PublicKey) ([]byte, error) {
	doc := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, kid := range slices.Sorted(maps.Keys(keys)) {
		pub := keys[kid]
		if len(pub) != ed25519.PublicKeySize {
			return nil, tandem.Errorf(tandem.EInternal, "jwks: public key %q is %d bytes, want %d", kid, len(pub), ed25519.PublicKeySize)
		}
		if kid != KeyID(pub) {
			return nil, tandem.Errorf(tandem.EInternal, "jwks: key id %q is not the key id of its key (%s)", kid, KeyID(pub))
		}
		doc.Keys = append(doc.Keys, jwk{Kty: "OKP", Crv: "Ed25519", Alg: "EdDSA", Use: "sig", Kid: kid, X: b64.EncodeToString(pub)})
	}
	return json.Marshal(doc)
}

// ParseJWKS returns the Ed25519 public keys of a JWK Set by key id. It is
// strict about Ed25519 entries (kty OKP, crv Ed25519): x must be exactly 32
// bytes of unpadded base64url, kid must be KeyID of that key (Tandem derives
// its key ids from the keys, so any other kid is a mistake or a forgery), alg
// if present EdDSA, use if present sig, and no private part d. Entries of
// another kty or crv are skipped, so the web server may publish other kinds
// of key later without breaking older nodes. Two entries with one kid, a
// document over MaxJWKSBytes or anything that is not a JWK Set is an error
// (a *tandem.Error with code EInvalid). A set without Ed25519 keys gives an
// empty map.
func ParseJWKS(b []byte) (map[string]ed25519.PublicKey, error) {
	if len(b) > MaxJWKSBytes {
		return nil, tandem.Errorf(tandem.EInvalid, "jwks: document is longer than %d bytes", MaxJWKSBytes)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, tandem.Errorf(tandem.EInvalid, "jwks: document is not a JSON object: %v", err)
	}
	rawKeys, ok := doc["keys"]
	if !ok {
		return nil, tandem.Errorf(tandem.EInvalid, `jwks: document has no "keys"`)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(rawKeys, &entries); err != nil || entries == nil {
		return nil, tandem.Errorf(tandem.EInvalid, `jwks: "keys" is not an array`)
	}
	keys := make(map[string]ed25519.PublicKey)
	for i, raw := range entries {
		kid, pub, err := parseJWK(raw)
		if err != nil {
			return nil, tandem.Errorf(tandem.EInvalid, "jwks: key %d: %s", i, err.(*tandem.Error).Message)
		}
		if pub == nil {
			continue // another kind of key
		}
		if _, dup := keys[kid]; dup {
			return nil, tandem.Errorf(tandem.EInvalid, "jwks: key %d: key id %s appears twice", i, kid)
		}
		keys[kid] = pub
	}
	return keys, nil
}

// parseJWK returns the kid and key of one entry, or a nil key for an entry
// of another kind. Members are looked up by their exact names: encoding/json
// would also take "KID" for "kid".
func parseJWK(raw json.RawMessage) (string, ed25519.PublicKey, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return "", nil, tandem.Errorf(tandem.EInvalid, "not a JSON object")
	}
	str := func(name string) (string, bool, error) {
		v, ok := m[name]
		if !ok {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil || bytes.Equal(v, []byte("null")) {
			return "", true, tandem.Errorf(tandem.EInvalid, "%q is not a string", name)
		}
		return s, true, nil
	}
	kty, ok, err := str("kty")
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, tandem.Errorf(tandem.EInvalid, `no "kty"`)
	}
	crv, _, err := str("crv")
	if err != nil {
		return "", nil, err
	}
	if kty != "OKP" || crv != "Ed25519" {
		return "", nil, nil
	}
	if _, ok := m["d"]; ok {
		return "", nil, tandem.Errorf(tandem.EInvalid, "a private key (d) is published")
	}
	for _, want := range [...]struct{ name, value string }{{"alg", "EdDSA"}, {"use", "sig"}} {
		v, ok, err := str(want.name)
		if err != nil {
			return "", nil, err
		}
		if ok && v != want.value {
			return "", nil, tandem.Errorf(tandem.EInvalid, "%q is not %q", want.name, want.value)
		}
	}
	x, ok, err := str("x")
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, tandem.Errorf(tandem.EInvalid, `no "x"`)
	}
	pub, err := decodeSegment(x)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return "", nil, tandem.Errorf(tandem.EInvalid, `"x" is not %d bytes of unpadded base64url`, ed25519.PublicKeySize)
	}
	kid, ok, err := str("kid")
	if err != nil {
		return "", nil, err
	}
	if !ok || kid != KeyID(pub) {
		// The offending kid is not repeated: it could be a megabyte long.
		return "", nil, tandem.Errorf(tandem.EInvalid, `"kid" is not the key id of its key (%s)`, KeyID(pub))
	}
	return kid, ed25519.PublicKey(pub), nil
}
