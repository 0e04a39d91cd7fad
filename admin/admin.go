// Package admin owns the admin UI: the server-rendered HTML pages under
// /admin, their templates and their embedded assets (htmx, the stylesheet).
// Handlers only parse a form, call service/ and render; every permission
// check and audit record is service/'s, and web/ authenticates each request
// and enforces each route's Access and Permission before a handler runs.
package admin

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// Config configures the admin UI.
type Config struct {
	Service *service.Service
	// Cookies names and secures the session and device cookies; web/
	// derives it from the public URL.
	Cookies web.Cookies
	// Logger receives internal errors (nil discards them).
	Logger *slog.Logger
}

// ui holds what every handler needs: the service, the parsed templates and
// the asset fingerprints.
type ui struct {
	svc     *service.Service
	cookies web.Cookies
	log     *slog.Logger
	pages   *pageSet
	assets  *assetSet
	// now tells which bans are in force for the player page's markers
	// and where a ban's length counts from; the service decides again.
	now func() time.Time
}

func newUI(cfg Config) *ui {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	assets := newAssetSet()
	return &ui{svc: cfg.Service, cookies: cfg.Cookies, log: log, assets: assets, pages: newPageSet(assets), now: time.Now}
}

// HTMLError returns the function web/ calls to answer a browser route with
// an error: a full error page, or the main region of one for htmx.
func HTMLError(cfg Config) func(w http.ResponseWriter, r *http.Request, err error) {
	return newUI(cfg).fail
}

// Routes returns every page and asset route of the admin UI, each with the
// access and permission web/ enforces before its handler runs.
func Routes(cfg Config) []web.Route {
	u := newUI(cfg)
	const (
		public  = web.Public
		pending = web.Pending
		admin   = web.Admin
	)
	route := func(method, path string, access web.Access, perm tandem.Permission, summary string, h http.HandlerFunc) web.Route {
		return web.Route{Method: method, Path: path, Access: access, Permission: perm, Summary: summary, Handler: h}
	}
	return []web.Route{
		route("GET", "/{$}", public, "", "the front door: redirects to /admin", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/admin", http.StatusSeeOther)
		}),
		route("GET", "/admin/assets/{file...}", public, "", "static asset (stylesheet, htmx)", u.asset),
		route("GET", "/admin/login", public, "", "login page", u.loginPage),
		route("POST", "/admin/login", public, "", "log in with name and password", u.login),

		route("GET", "/admin/mfa", pending, "", "two-factor challenge page", u.mfaPage),
		route("POST", "/admin/mfa", pending, "", "pass the two-factor challenge", u.mfa),
		route("GET", "/admin/mfa/enrol", pending, "", "two-factor enrolment page", u.enrolPage),
		route("POST", "/admin/mfa/enrol", pending, "", "start a two-factor enrolment", u.beginEnrol),
		route("GET", "/admin/mfa/qr.png", pending, "", "QR code of the pending enrolment", u.enrolQR),
		route("POST", "/admin/mfa/confirm", pending, "", "confirm the enrolment; shows recovery codes once", u.confirmEnrol),
		route("POST", "/admin/logout", pending, "", "log out", u.logout),

		route("GET", "/admin", admin, "", "overview", u.overview),
		route("GET", "/admin/reauth", admin, "", "password confirmation page", u.reauthPage),
		route("POST", "/admin/reauth", admin, "", "confirm password (and code) for sensitive changes", u.reauth),
		route("GET", "/admin/account", admin, "", "own account", u.account),
		route("POST", "/admin/account/password", admin, "", "change own password", u.changePassword),

		route("GET", "/admin/admins", admin, tandem.PermAdminsManage, "admins and the create form", u.admins),
		route("POST", "/admin/admins", admin, tandem.PermAdminsManage, "create an admin", u.createAdmin),
		route("POST", "/admin/admins/{id}", admin, tandem.PermAdminsManage, "change an admin's role, password or status", u.updateAdmin),

		route("GET", "/admin/roles", admin, "", "roles", u.roles),
		route("POST", "/admin/roles", admin, tandem.PermRolesManage, "create a role", u.createRole),
		route("GET", "/admin/roles/{id}", admin, "", "one role", u.role),
		route("POST", "/admin/roles/{id}", admin, tandem.PermRolesManage, "change a role", u.updateRole),
		route("POST", "/admin/roles/{id}/delete", admin, tandem.PermRolesManage, "delete a role", u.deleteRole),

		route("GET", "/admin/api-keys", admin, tandem.PermAdminsManage, "admin API keys", u.apiKeys),
		route("POST", "/admin/api-keys", admin, tandem.PermAdminsManage, "create an API key; shows its secret once", u.createAPIKey),
		route("POST", "/admin/api-keys/{id}/revoke", admin, tandem.PermAdminsManage, "revoke an API key", u.revokeAPIKey),

		route("GET", "/admin/audit", admin, tandem.PermAuditRead, "search the audit log", u.audit),

		route("GET", "/admin/players", admin, tandem.PermPlayersRead, "search players by id, name, email or device", u.players),
		route("GET", "/admin/players/{id}", admin, tandem.PermPlayersRead, "one player: profile, devices, logins, bans, notes", u.player),
		route("POST", "/admin/players/{id}", admin, tandem.PermPlayersWrite, "edit a player's display name and matchmaking properties", u.editPlayer),
		route("POST", "/admin/players/{id}/bans", admin, tandem.PermPlayersBan, "ban a player's account or one of their devices", u.banPlayer),
		route("POST", "/admin/players/{id}/bans/{ban_id}/lift", admin, tandem.PermPlayersBan, "lift a ban early", u.liftBan),
		route("POST", "/admin/players/{id}/logout", admin, tandem.PermPlayersBan, "end every session of a player", u.logoutPlayer),
		route("POST", "/admin/players/{id}/notes", admin, tandem.PermPlayersWrite, "add a note to a player's page", u.addPlayerNote),
		route("POST", "/admin/players/{id}/kick", admin, tandem.PermRoomsManage, "end the player's realtime session (a command to its node)", u.kickPlayer),
		route("POST", "/admin/players/{id}/notice", admin, tandem.PermRoomsManage, "send the player a system notice (a command to its node)", u.noticePlayer),

		route("GET", "/admin/nodes", admin, tandem.PermRoomsRead, "realtime nodes: live, draining and down", u.nodes),
		route("POST", "/admin/nodes/{id}/drain", admin, tandem.PermRoomsManage, "drain a node (a command to it)", u.drainNode),
		route("GET", "/admin/rooms", admin, tandem.PermRoomsRead, "live rooms by type, label and node", u.rooms),
		route("GET", "/admin/rooms/{id}", admin, tandem.PermRoomsRead, "one live room: players with their connection and RTT, its state, labels, recent events", u.room),
		route("POST", "/admin/rooms/{id}/close", admin, tandem.PermRoomsManage, "close a room (a command to its node)", u.roomAction(tandem.CommandCloseRoom)),
		route("POST", "/admin/rooms/{id}/lock", admin, tandem.PermRoomsManage, "lock a room: no joins (a command to its node)", u.roomAction(tandem.CommandLockRoom)),
		route("POST", "/admin/rooms/{id}/unlock", admin, tandem.PermRoomsManage, "unlock a room (a command to its node)", u.roomAction(tandem.CommandUnlockRoom)),
		route("POST", "/admin/rooms/{id}/notice", admin, tandem.PermRoomsManage, "send a room's players a system notice (a command to its node)", u.roomAction(tandem.CommandNotice)),
		route("POST", "/admin/rooms/{id}/kick", admin, tandem.PermRoomsManage, "end a room player's realtime session (a command to its node)", u.roomAction(tandem.CommandKick)),
		route("GET", "/admin/commands", admin, tandem.PermRoomsRead, "recent node commands and their delivery", u.commands),
		route("POST", "/admin/commands/notice", admin, tandem.PermRoomsManage, "send a system notice to every session of every node", u.noticeEveryone),

		route("GET", "/admin/matchmaking", admin, tandem.PermRoomsRead, "matchmaking queues: shape, depth, matches and waits of the last hour; the new queue form", u.queues),
		route("POST", "/admin/matchmaking", admin, tandem.PermMatchmakingManage, "create a matchmaking queue", u.createQueue),
		route("GET", "/admin/matchmaking/{queue}", admin, tandem.PermRoomsRead, "one queue: depth by ticket state, waits, recent matches, its configuration", u.queue),
		route("POST", "/admin/matchmaking/{queue}", admin, tandem.PermMatchmakingManage, "replace a queue's configuration (JSON)", u.saveQueue),
		route("POST", "/admin/matchmaking/{queue}/delete", admin, tandem.PermMatchmakingManage, "delete a queue", u.deleteQueue),
	}
}
