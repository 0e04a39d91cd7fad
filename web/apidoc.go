package web

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/tandemhq/tandem"
)

// APIDoc renders the route table as Markdown for docs/api.md: the
// conventions, the error codes, and a table per area with each route's
// method, path, access, permission, body and summary. The output depends
// only on routes, so a test can compare it with the file.
func APIDoc(routes []Route) []byte {
	var b bytes.Buffer
	b.WriteString(`# HTTP API

<!-- Generated from the route table by web.APIDoc; a test fails when this file is stale. Do not edit. -->

The web server (` + "`tandem web`" + `) serves the admin UI under ` + "`/admin`" + `, the admin JSON API
under ` + "`" + APIPrefix + "`" + `, the player API under ` + "`" + PlayerAPIPrefix + "`" + ` and the public keys of realtime
tokens at ` + "`" + JWKSPath + "`" + `. Every route is listed below with what it needs.

## Conventions

- **Authentication.** API routes take the session cookie that ` + "`POST " + APIPrefix + "/session`" + ` sets, or an
  admin API key: ` + "`Authorization: Bearer tdk_…`" + `. The role is read on every request, so a removed
  permission counts from the next one.
- **Player authentication.** Player API routes take a player's access token from a login call
  (` + "`POST " + PlayerAPIPrefix + "/auth/…`" + `): ` + "`Authorization: Bearer tpa_…`" + `. An expired one gets 401
  ` + "`token_expired`" + ` (refresh it with the refresh token, ` + "`tpr_…`" + `, which works once). Admin sessions and
  API keys do not reach player routes, and access tokens reach nothing else. Login calls answer an
  *AuthResult*: ` + "`{player_id, created, session_id, access_token, access_expires_at, refresh_token, refresh_expires_at, realtime_token, realtime_expires_at, realtime_url}`" + `;
  a profile is ` + "`{id, display_name, email, guest, locale, avatar_url, mm, created_at}`" + `. Login calls
  are rate limited per client address, device id and account (429 with ` + "`Retry-After`" + `).
- **Access.** *public*: anyone. *session*: a logged-in session whose MFA may still be outstanding (not an
  API key). *admin*: a session with MFA done, or an API key, holding the permission named (if any).
  An admin whose MFA is outstanding gets 403 ` + "`mfa_required`" + `; sensitive changes need a recent
  ` + "`POST " + APIPrefix + "/session/reauth`" + ` (403 ` + "`reauth_required`" + `), which API keys cannot do.
  *player*: a player's access token, about their own account only: a ` + "`{player_id}`" + ` other than the
  caller's is answered 404 ` + "`not_found`" + `, as for an id that does not exist, and so is another player's
  ` + "`{session_id}`" + `.
- **Bodies** are JSON (` + "`Content-Type: application/json`" + `), at most 64 KiB by default; unknown fields
  are refused. Field names are snake_case; times are RFC 3339.
- **Errors** are ` + "`application/problem+json`" + `:
  ` + "`" + `{"type":"about:blank","title":"validation_failed","status":422,"detail":"some fields are invalid","code":18,"temporary":false,"errors":[{"field":"name","message":"is required"}]}` + "`" + `.
  ` + "`errors`" + ` comes only with 422 and names every field the service found invalid; a body that
  cannot be decoded (an unknown field, a wrong type) is refused on its first such field. A 429
  (` + "`rate_limited`" + `) carries ` + "`Retry-After`" + ` in seconds, repeated as ` + "`retry_after`" + `.
- **Cross-origin** writes (POST, PUT, PATCH, DELETE from another site) to the admin UI and the admin API are
  refused with 403. The player API takes no cookies, so it is open to the browser origins the server lists
  (` + "`--cors-origins`" + `, exact origins, no ` + "`*`" + `): they get CORS headers (preflights answered; methods
  of the path; headers ` + "`Authorization`" + ` and ` + "`Content-Type`" + `; ` + "`Retry-After`" + ` readable; never credentials),
  requests without an Origin (game clients, servers) pass, and any other origin gets 403. ` + "`" + JWKSPath + "`" + `
  answers every origin.
- **Bans.** A banned player's login, refresh or token request gets 403 ` + "`banned`" + `; the detail says why,
  and ` + "`until`" + ` (RFC 3339) when the ban ends (absent for a permanent ban).

## Error codes

| code | title | HTTP status | temporary |
|---|---|---|---|
`)
	for _, c := range tandem.ErrorCodes() {
		fmt.Fprintf(&b, "| %d | `%s` | %d | %t |\n", c, c, c.HTTPStatus(), c.Temporary())
	}

	var areas []string
	byArea := map[string][]Route{}
	for _, rt := range routes {
		a := routeArea(rt)
		if _, ok := byArea[a]; !ok {
			areas = append(areas, a)
		}
		byArea[a] = append(byArea[a], rt)
	}
	for _, a := range areas {
		fmt.Fprintf(&b, "\n## %s\n\n| method | path | access | permission | body | summary |\n|---|---|---|---|---|---|\n", a)
		for _, rt := range byArea[a] {
			perm, body := "—", "—"
			if rt.Permission != "" {
				perm = "`" + string(rt.Permission) + "`"
			}
			if rt.Body != "" {
				body = "`" + cell(rt.Body) + "`"
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s |\n",
				rt.Method, cell(rt.Path), accessName(rt.Access), perm, body, cell(rt.Summary))
		}
	}
	return b.Bytes()
}

func routeArea(rt Route) string {
	switch {
	case underPlayerAPI(rt.Path):
		seg, _, _ := strings.Cut(strings.TrimPrefix(rt.Path, PlayerAPIPrefix+"/"), "/")
		return "Player API: " + seg
	case strings.HasPrefix(rt.Path, APIPrefix+"/"):
		seg, _, _ := strings.Cut(strings.TrimPrefix(rt.Path, APIPrefix+"/"), "/")
		return "API: " + seg
	case rt.Path == "/admin" || strings.HasPrefix(rt.Path, "/admin/"):
		return "Admin UI"
	}
	return "Server"
}

func accessName(a Access) string {
	switch a {
	case Public:
		return "public"
	case Pending:
		return "session"
	case Player:
		return "player"
	}
	return "admin"
}

// cell keeps a value inside its Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
