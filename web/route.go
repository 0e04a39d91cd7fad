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
	// Public routes need no login: the login page, assets, health.
	Public Access = iota
	// Pending routes need a session but allow one whose MFA is still
	// outstanding: the MFA challenge and enrolment pages, logout.
	Pending
	// Admin routes need a session (or, for the JSON API, an API key) with
	// MFA done, and the route's Permission if it names one.
	Admin
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
	API     bool
	Summary string // one line for docs/api.md
	// Body names the JSON request body type for docs/api.md (API routes).
	Body    string
	Handler http.HandlerFunc
}

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
