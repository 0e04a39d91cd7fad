package web

import (
	"net/http"

	"github.com/tandemhq/tandem/token"
)

// JWKSPath is where the web server publishes the public keys of realtime
// tokens, for realtime nodes started with --jwks-url (and anyone else).
const JWKSPath = "/.well-known/jwks.json"

// jwksMaxAge is how long (seconds) a cache may keep the key set. It can be
// short because the document is small and cheap; a realtime node does not
// wait for it either, refetching at once when a token names a kid it does
// not know.
const jwksMaxAge = "60"

func (a *playerAPI) jwks(w http.ResponseWriter, r *http.Request) {
	keys, err := a.svc.SigningPublicKeys(r.Context())
	if err != nil {
		WriteError(w, r, err)
		return
	}
	b, err := token.MarshalJWKS(keys)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age="+jwksMaxAge)
	w.Write(b)
}
