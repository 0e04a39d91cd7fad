// Package web owns the web server's HTTP core and its JSON APIs: the
// middleware every request passes (panic recovery, request ids and logs,
// security headers, cross-origin protection or CORS, client addresses), the
// authentication and access check in front of every Route, the problem+json
// error format, the session and device cookies, /api/admin/v1, the player
// API under /api/v1 with /.well-known/jwks.json, and the docs/api.md
// generator. The admin UI's pages are admin/'s; both declare
// Routes, and this package serves them all through one ServeMux.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// DefaultMaxBodyBytes bounds request bodies when Config.MaxBodyBytes is 0:
// every admin request is a small form or JSON document.
const DefaultMaxBodyBytes = 64 << 10

// The admin UI pages web/ sends browsers to; admin/ serves them.
const (
	loginPath    = "/admin/login"
	mfaPath      = "/admin/mfa"
	mfaEnrolPath = "/admin/mfa/enrol"
)

// Config configures a Server.
type Config struct {
	Service *service.Service
	Logger  *slog.Logger // nil discards
	// PublicURL is where browsers reach the server (https://ops.example.com);
	// https makes the cookies Secure with the __Host- prefix.
	PublicURL string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed, hop by hop from the right.
	TrustedProxies []netip.Prefix
	// Routes is every route: APIRoutes(...) and admin.Routes(...).
	Routes []Route
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when 0);
	// a larger one is answered 413 too_large.
	MaxBodyBytes int64
	// HTMLError renders an error for a browser route (admin/ supplies it;
	// nil writes plain text). Redirects to the login and MFA pages are
	// web/'s own.
	HTMLError func(w http.ResponseWriter, r *http.Request, err error)
	// CORSOrigins are the browser origins (https://game.example.com, exact,
	// no "*") whose pages may call the player API; any other origin but the
	// server's own is refused with 403. The JWKS is public and answers every
	// origin.
	CORSOrigins []string
}

// Server is the web server's HTTP handler with its route table.
type Server struct {
	svc       *service.Service
	log       *slog.Logger
	cookies   Cookies
	proxies   []netip.Prefix
	maxBody   int64
	htmlError func(w http.ResponseWriter, r *http.Request, err error)
	cors      *corsPolicy
	routes    []Route
	mux       *http.ServeMux
	// methods are those some route uses, to tell 405 from 404.
	methods []string
	handler http.Handler
}

// New checks the route table and builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("web: Config.Service is nil")
	}
	cors, err := newCORSPolicy(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	s := &Server{
		svc:       cfg.Service,
		log:       cfg.Logger,
		cookies:   CookiesFor(cfg.PublicURL),
		proxies:   cfg.TrustedProxies,
		maxBody:   cfg.MaxBodyBytes,
		htmlError: cfg.HTMLError,
		cors:      cors,
		mux:       http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.htmlError == nil {
		s.htmlError = plainError
	}
	for _, p := range s.proxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("web: trusted proxy %v is not a valid prefix", p)
		}
	}
	cop := http.NewCrossOriginProtection()
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("web: PublicURL %q is not an http:// or https:// URL", cfg.PublicURL)
		}
		// A proxy may rewrite Host; the public origin is still same-origin.
		if err := cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("web: PublicURL: %w", err)
		}
		s.cors.publicOrigin = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, isAPIPath(r), tandem.Errorf(tandem.EPermission, "cross-origin request refused"))
	}))

	s.routes = slices.Clone(cfg.Routes)
	if err := checkRoutes(s.routes); err != nil {
		return nil, err
	}
	for _, rt := range s.routes {
		if err := register(s.mux, rt.Pattern(), s.guard(rt)); err != nil {
			return nil, err
		}
	}
	for _, m := range routeMethods {
		if slices.ContainsFunc(s.routes, func(rt Route) bool { return rt.Method == m }) {
			s.methods = append(s.methods, m)
		}
	}

	// Outermost first: a panic anywhere is caught, every response is logged
	// and carries the security headers, and a cross-site write is refused
	// (or, on the player API, a foreign origin) before anything reads its
	// credentials.
	var h http.Handler = http.HandlerFunc(s.dispatch)
	h = s.clientAddress(h)
	h = s.crossOrigin(cop, h)
	h = securityHeaders(h)
	h = s.logRequests(h)
	h = s.recoverPanics(h)
	s.handler = h
	return s, nil
}

// Handler returns the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

var routeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func checkRoutes(routes []Route) error {
	seen := map[string]bool{}
	var errs []error
	for _, rt := range routes {
		p := rt.Pattern()
		switch {
		case !slices.Contains(routeMethods, rt.Method):
			errs = append(errs, fmt.Errorf("web: route %s: method must be one of %v", p, routeMethods))
		case !strings.HasPrefix(rt.Path, "/"):
			errs = append(errs, fmt.Errorf("web: route %s: path must start with /", p))
		case seen[p]:
			errs = append(errs, fmt.Errorf("web: route %s is declared twice", p))
		case rt.Handler == nil:
			errs = append(errs, fmt.Errorf("web: route %s has no handler", p))
		case rt.Permission != "" && !rt.Permission.Valid():
			errs = append(errs, fmt.Errorf("web: route %s: unknown permission %q", p, rt.Permission))
		case rt.Permission != "" && rt.Access != Admin:
			errs = append(errs, fmt.Errorf("web: route %s: only Admin routes can need a permission", p))
		default:
			errs = append(errs, checkPlayerRoute(rt)...)
		}
		seen[p] = true
	}
	return errors.Join(errs...)
}

// checkPlayerRoute enforces the player API's rules: it lives under
// PlayerAPIPrefix and nothing else does; its routes are Public or Player,
// speak JSON and declare what they own (Owns) or that they own nothing; and
// every wildcard of the path is declared in Owns, whatever its name, so
// that no route names a resource the server, the service and the isolation
// test are not told about. An OwnsNothing route has no wildcards at all.
func checkPlayerRoute(rt Route) []error {
	p := rt.Pattern()
	fail := func(format string, args ...any) []error {
		return []error{fmt.Errorf("web: route %s: "+format, append([]any{p}, args...)...)}
	}
	under := underPlayerAPI(rt.Path)
	switch {
	case rt.Access == Player && !under:
		return fail("Player routes live under %s/", PlayerAPIPrefix)
	case under && rt.Access != Player && rt.Access != Public:
		return fail("routes under %s/ are the player API: Public or Player access only", PlayerAPIPrefix)
	case under && !rt.API:
		return fail("routes under %s/ are API routes (set API)", PlayerAPIPrefix)
	case !under && (len(rt.Owns) > 0 || rt.OwnsNothing):
		return fail("only player API routes declare Owns or OwnsNothing")
	case !under:
		return nil
	case len(rt.Owns) == 0 && !rt.OwnsNothing:
		return fail("a player API route must declare the fields naming a player's resource (Owns) or OwnsNothing")
	case len(rt.Owns) > 0 && rt.OwnsNothing:
		return fail("declares both Owns and OwnsNothing")
	case len(rt.Owns) > 0 && rt.Access != Player:
		return fail("only Player routes own resources: a public route has no player to own them")
	}
	wildcards := pathWildcards(rt.Path)
	if rt.OwnsNothing && len(wildcards) > 0 {
		return fail("declares OwnsNothing but its path names {%s}: a wildcard names a resource, "+
			"which a Player route declares in Owns (%q) and a public route cannot have",
			strings.Join(wildcards, "}, {"), "path:"+wildcards[0])
	}
	var errs []error
	for i, o := range rt.Owns {
		name, ok := strings.CutPrefix(o, "path:")
		switch {
		case !ok || !slices.Contains(wildcards, name):
			errs = append(errs, fail("Owns %q is not path:<a wildcard of the path>", o)...)
		case slices.Contains(rt.Owns[:i], o):
			errs = append(errs, fail("Owns declares %q twice", o)...)
		}
	}
	for _, name := range wildcards {
		if o := "path:" + name; !slices.Contains(rt.Owns, o) {
			errs = append(errs, fail("the path names {%s} but Owns does not declare %q", name, o)...)
		}
	}
	return errs
}

// pathWildcards returns the names of a pattern path's wildcards.
func pathWildcards(path string) []string {
	var names []string
	for seg := range strings.SplitSeq(path, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			if name, ok = strings.CutSuffix(name, "}"); ok {
				names = append(names, strings.TrimSuffix(name, "..."))
			}
		}
	}
	return names
}

// register turns ServeMux's panic on conflicting patterns into an error.
func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("web: route %s: %v", pattern, p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// dispatch serves a matching route, and answers 404 and 405 in the format
// of the part of the site asked (problem+json under /api/).
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	allow := s.allowedMethods(r)
	switch {
	case len(allow) > 0 && isAPIPath(r):
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, tandem.Errorf(tandem.EInvalid, "%s is not allowed here; use %s", r.Method, strings.Join(allow, " or ")),
			http.StatusMethodNotAllowed)
	case len(allow) > 0:
		w.Header().Set("Allow", strings.Join(allow, ", "))
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		s.fail(w, r, isAPIPath(r), tandem.Errorf(tandem.ENotFound, "there is nothing at %s", r.URL.Path))
	}
}

// allowedMethods returns the methods some route serves at r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var allow []string
	for _, m := range s.methods {
		probe := *r
		probe.Method = m
		if _, pattern := s.mux.Handler(&probe); pattern != "" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	return allow
}

func isAPIPath(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// fail answers an error: problem+json for the API, the HTML error page for
// a browser.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, api bool, err error) {
	if api {
		WriteError(w, r, err)
		return
	}
	noteError(r, err)
	s.htmlError(w, r, err)
}

func plainError(w http.ResponseWriter, r *http.Request, err error) {
	e := publicError(err)
	http.Error(w, e.Message, e.Code.HTTPStatus())
}

// guard authenticates the request and enforces the route's Access and
// Permission before its handler runs.
func (s *Server) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		ctx := r.Context()
		if info := infoFrom(ctx); info != nil {
			info.maxBody = s.maxBody
		}
		if underPlayerAPI(rt.Path) || (rt.Path == JWKSPath && rt.Access == Public) {
			s.servePlayerAPI(w, r, rt)
			return
		}
		actor, err := s.authenticate(r, rt)
		if rt.Access != Public && tandem.ErrorCodeOf(err) == tandem.EUnauthenticated &&
			s.cookies.Session(r) != "" && r.Header.Get("Authorization") == "" {
			// The session has ended: the browser may as well forget it. (Not
			// on Public routes: the login sets a new one in the same answer.)
			s.cookies.ClearSession(w)
		}
		switch rt.Access {
		case Public:
			// A public page works for anyone; a session is only a bonus.
			if err != nil {
				actor = nil
			}
		case Pending:
			if err == nil && actor.Session == nil {
				err = tandem.Errorf(tandem.EPermission, "this needs an admin session; API keys cannot use it")
			}
			if err != nil {
				s.refuse(w, r, rt, err)
				return
			}
		case Admin:
			if err != nil {
				s.refuse(w, r, rt, err)
				return
			}
			if step := actor.MFAOutstanding(); step != "" && !rt.API {
				target := mfaPath
				if step == service.MFAEnrol {
					target = mfaEnrolPath
				}
				redirect(w, r, target, http.StatusForbidden)
				return
			}
			if err := s.svc.Authorize(ctx, actor, rt.Permission, rt.Pattern()); err != nil {
				// With the actor, so the refusal page still shows what it may use.
				s.fail(w, r.WithContext(WithActor(ctx, actor)), rt.API, err)
				return
			}
		}
		if actor != nil {
			if info := infoFrom(ctx); info != nil {
				info.actor = fmt.Sprintf("%s:%d", actor.Kind, actor.ID)
			}
			r = r.WithContext(WithActor(ctx, actor))
		}
		rt.Handler(w, r)
	})
}

// servePlayerAPI serves a route of the player API. Its public routes (the
// logins) authenticate nobody: an admin session cookie or an
// Authorization header there means nothing. Its Player routes take only a
// player's access token and refuse a {player_id} that is not the caller's
// with 404, as if the player did not exist: the answer must not tell
// whether another player's id is real.
func (s *Server) servePlayerAPI(w http.ResponseWriter, r *http.Request, rt Route) {
	if rt.Access == Public {
		rt.Handler(w, r)
		return
	}
	ctx := r.Context()
	p, err := s.authenticatePlayer(r)
	if err != nil {
		if code := tandem.ErrorCodeOf(err); code == tandem.EUnauthenticated || code == tandem.ETokenExpired {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		WriteError(w, r, err)
		return
	}
	if info := infoFrom(ctx); info != nil {
		info.actor = "player:" + p.PlayerID
	}
	if slices.Contains(rt.Owns, OwnsPlayerID) && r.PathValue("player_id") != p.PlayerID {
		// The same answer as the service gives, for an id that exists or not.
		WriteError(w, r, tandem.Errorf(tandem.ENotFound, "no such player"))
		return
	}
	rt.Handler(w, r.WithContext(WithPlayer(ctx, p)))
}

// authenticatePlayer finds the player of the request's access token.
func (s *Server) authenticatePlayer(r *http.Request) (*service.PlayerActor, error) {
	scheme, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, tandem.Errorf(tandem.EUnauthenticated, "send the access token as Authorization: Bearer <access_token>")
	}
	return s.svc.AuthenticatePlayer(r.Context(), secret, playerClient(r))
}

// authenticate finds the caller: an API key (API routes only) or the
// session cookie. A Public route without either asks the database nothing.
func (s *Server) authenticate(r *http.Request, rt Route) (*service.Actor, error) {
	ctx, addr := r.Context(), ClientAddress(r)
	if h := r.Header.Get("Authorization"); h != "" && rt.API {
		scheme, secret, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
			return nil, tandem.Errorf(tandem.EUnauthenticated, "send the API key as Authorization: Bearer <key>")
		}
		return s.svc.AuthenticateAPIKey(ctx, strings.TrimSpace(secret), addr)
	}
	token := s.cookies.Session(r)
	if token == "" {
		return nil, tandem.Errorf(tandem.EUnauthenticated, "log in first")
	}
	return s.svc.Authenticate(ctx, token, addr)
}

// refuse answers a request that could not be authenticated: the API gets
// the error, a browser is sent to the login page when it needs one.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, rt Route, err error) {
	if rt.API || tandem.ErrorCodeOf(err) != tandem.EUnauthenticated {
		s.fail(w, r, rt.API, err)
		return
	}
	target := loginPath
	if next := returnPath(r); next != "" {
		target += "?" + url.Values{"next": {next}}.Encode()
	}
	redirect(w, r, target, http.StatusUnauthorized)
}

// returnPath is the page to come back to after logging in: the page asked
// for, or for an htmx request the page it was made from. Only local admin
// pages qualify.
func returnPath(r *http.Request) string {
	next := ""
	switch {
	case r.Header.Get("HX-Request") == "true":
		if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil {
			next = u.RequestURI()
		}
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		next = r.URL.RequestURI()
	}
	if next == "/admin" || strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "/admin?") {
		return next
	}
	return ""
}

// redirect sends a browser to target with 303. An htmx request would follow
// a 303 inside its fragment, so it gets HX-Redirect (with htmxStatus),
// which makes htmx load the whole page instead.
func redirect(w http.ResponseWriter, r *http.Request, target string, htmxStatus int) {
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(htmxStatus)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// context keys of this package.
type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(infoKey{}).(*requestInfo)
	return i
}
