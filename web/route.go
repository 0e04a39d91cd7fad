package web

import (
	"context"
	"net/http"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// Access says who may reach a route at all, before its permission.
type Access int

// The access levels.
const (
	// Public routes need no login: the login page, assets, health, the
	// player API's login calls.
	Public Access = iota
	// Pending routes need a session but allow one whose MFA is still
	// outstanding: the MFA challenge and enrolment pages, logout.
	Pending
	// Admin routes need a session (or, for the JSON API, an API key) with
	// MFA done, and the route's Permission if it names one.
	Admin
	// Player routes need a player's access token (Authorization: Bearer
	// tpa_…) and nothing else: admin sessions and API keys do not reach
	// them, and player tokens reach no other route. They are API routes
	// and declare which of their request fields name a player-owned
	// resource (Route.Owns) or that none does (Route.OwnsNothing).
	Player
)

// Route is one HTTP route. Every route of the web server, HTML or JSON, is
// declared as a Route, and the server enforces its Access and Permission
// before the handler runs (the service checks again and audits). The route
// table is what docs/api.md is generated from and what the route-permission
// test compares with its literal table.
type Route struct {
	Method string // GET, POST, PUT, PATCH, DELETE
	// Path is a net/http pattern path such as /api/admin/v1/roles/{id}.
	Path       string
	Access     Access
	Permission tandem.Permission // "" = none beyond Access
	// API routes speak JSON (problem+json errors) and accept API keys;
	// other routes are HTML pages for a browser session.
	API bool
	// Owns names the request fields of a Player route that name a resource
	// of the calling player, as "path:<wildcard>" (OwnsPlayerID,
	// OwnsSessionID). Every wildcard of the path must be named, whatever
	// it is called: New refuses a route whose path names something its
	// Owns does not, so no resource id reaches a handler undeclared. The
	// server refuses a request whose {player_id} is not the caller's with
	// 404 before the handler runs; every other field is checked by the
	// service (which checks player_id again). The isolation test replays
	// each such route with another player's ids, and fails for a field it
	// does not know how to fill.
	Owns []string
	// OwnsNothing declares that a Player route, or a public route of the
	// player API, names no player-owned resource: the caller's own session
	// is implied (logout), or there is no caller (logins). Its path has no
	// wildcards. Every route of the player API declares Owns or
	// OwnsNothing, so a new one cannot skip the isolation test unnoticed.
	OwnsNothing bool
	Summary     string // one line for docs/api.md
	// Body names the JSON request body type for docs/api.md (API routes).
	Body    string
	Handler http.HandlerFunc
}

// The Owns entries the player API uses.
const (
	// OwnsPlayerID: the path's {player_id} must be the caller's id (the
	// server checks it).
	OwnsPlayerID = "path:player_id"
	// OwnsSessionID: the path's {session_id} must be one of the caller's
	// sessions (the service checks it).
	OwnsSessionID = "path:session_id"
)

// Pattern returns the route's net/http pattern: "GET /path".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

type actorKey struct{}

// WithActor returns ctx carrying the authenticated actor.
func WithActor(ctx context.Context, a *service.Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor the server authenticated for this request,
// or nil on a Public route without a session.
func ActorFrom(ctx context.Context) *service.Actor {
	a, _ := ctx.Value(actorKey{}).(*service.Actor)
	return a
}

type playerKey struct{}

// WithPlayer returns ctx carrying the authenticated player.
func WithPlayer(ctx context.Context, p *service.PlayerActor) context.Context {
	return context.WithValue(ctx, playerKey{}, p)
}

// PlayerFrom returns the player the server authenticated for this request:
// set on every Player route, nil elsewhere.
func PlayerFrom(ctx context.Context) *service.PlayerActor {
	p, _ := ctx.Value(playerKey{}).(*service.PlayerActor)
	return p
}
