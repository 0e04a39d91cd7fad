package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tandemhq/tandem"
)

// corsPolicy decides which browser origins may call the player API.
//
// The player API authenticates with bearer tokens that a page's script
// sends explicitly, never with cookies, so a cross-site page cannot make a
// browser send a player's credentials: there is nothing for
// http.CrossOriginProtection to protect there, and it would refuse every
// legitimate call from a game's page on another origin. The player API is
// exempt from it and goes through this allow-list instead: an origin listed
// in Config.CORSOrigins gets the CORS headers, the server's own origin needs
// none, and any other origin is refused with 403. Credentials are never
// allowed (no Access-Control-Allow-Credentials) and "*" is refused in the
// configuration: a game names the origins of its pages. The admin UI and
// the admin API keep CrossOriginProtection, since they take cookies.
//
// /.well-known/jwks.json holds only public keys and sets no state, so it
// answers every origin with "*".
type corsPolicy struct {
	allowed map[string]bool
	// publicOrigin is the origin of Config.PublicURL ("" if none): the
	// server's own pages behind a proxy that rewrites Host.
	publicOrigin string
}

// corsMaxAge is how long (seconds) a browser may reuse a preflight answer.
const corsMaxAge = "600"

// corsAllowedHeaders are the request headers a player API call may carry
// beyond the CORS-safelisted ones.
const corsAllowedHeaders = "Authorization, Content-Type"

// corsExposedHeaders are the response headers a page's script may read
// beyond the safelisted ones: when to retry after a 429, the request id to
// quote in a report, where a created account lives.
const corsExposedHeaders = "Retry-After, X-Request-Id, Location"

func newCORSPolicy(origins []string) (*corsPolicy, error) {
	p := &corsPolicy{allowed: map[string]bool{}}
	for _, o := range origins {
		norm, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("web: CORS origin %q: %w", o, err)
		}
		p.allowed[norm] = true
	}
	return p, nil
}

// normalizeOrigin returns o as browsers send it in Origin: the lower-case
// scheme://host[:port], nothing else.
func normalizeOrigin(o string) (string, error) {
	if o == "*" || o == "null" {
		return "", fmt.Errorf("name each origin exactly (https://game.example.com); %q would let any page call the player API", o)
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("an origin is http:// or https:// with a host and an optional port, nothing more")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// crossOrigin sends the player API through the CORS policy, the JWKS
// through its public one, and everything else through cop.
func (s *Server) crossOrigin(cop *http.CrossOriginProtection, next http.Handler) http.Handler {
	protected := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == JWKSPath:
			s.publicCORS(w, r, next)
		case underPlayerAPI(r.URL.Path):
			s.playerCORS(w, r, next)
		default:
			protected.ServeHTTP(w, r)
		}
	})
}

func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// playerCORS applies the allow-list to a player API request.
func (s *Server) playerCORS(w http.ResponseWriter, r *http.Request, next http.Handler) {
	h := w.Header()
	// The answer depends on Origin: a cache must not give one origin's
	// answer to another.
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	switch {
	case origin == "":
		// Not a cross-origin browser request: a game client, a server,
		// a same-origin GET.
	case s.cors.allowed[strings.ToLower(origin)]:
		h.Set("Access-Control-Allow-Origin", origin)
		if isPreflight(r) {
			s.preflight(w, r)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposedHeaders)
	case s.cors.sameOrigin(r, origin):
		// The server's own pages need no CORS headers.
	default:
		WriteError(w, r, tandem.Errorf(tandem.EPermission,
			"pages of %s may not call the player API: the server does not list that origin", origin))
		return
	}
	next.ServeHTTP(w, r)
}

// preflight answers a CORS preflight with the methods the path serves.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	allow := s.allowedMethods(r)
	if len(allow) == 0 {
		WriteError(w, r, tandem.Errorf(tandem.ENotFound, "there is nothing at %s", r.URL.Path))
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", strings.Join(allow, ", "))
	h.Set("Access-Control-Allow-Headers", corsAllowedHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
}

// sameOrigin reports whether origin is the server's own: the browser says
// so, or it names the host asked or the public URL.
func (p *corsPolicy) sameOrigin(r *http.Request, origin string) bool {
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) || (p.publicOrigin != "" && strings.EqualFold(origin, p.publicOrigin))
}

// publicCORS lets any origin read the JWKS: public keys, no credentials.
// The header goes on every answer, Origin or not, so the one a shared
// cache keeps serves browsers too.
func (s *Server) publicCORS(w http.ResponseWriter, r *http.Request, next http.Handler) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Header.Get("Origin") != "" && isPreflight(r) {
		s.preflight(w, r)
		return
	}
	next.ServeHTTP(w, r)
}
