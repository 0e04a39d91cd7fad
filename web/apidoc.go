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

The web server (` + "`tandem web`" + `) serves the admin UI under ` + "`/admin`" + ` and the admin JSON API
under ` + "`" + APIPrefix + "`" + `. Every route is listed below with what it needs.

## Conventions

- **Authentication.** API routes take the session cookie that ` + "`POST " + APIPrefix + "/session`" + ` sets, or an
  admin API key: ` + "`Authorization: Bearer tdk_…`" + `. The role is read on every request, so a removed
  permission counts from the next one.
- **Access.** *public*: anyone. *session*: a logged-in session whose MFA may still be outstanding (not an
  API key). *admin*: a session with MFA done, or an API key, holding the permission named (if any).
  An admin whose MFA is outstanding gets 403 ` + "`mfa_required`" + `; sensitive changes need a recent
  ` + "`POST " + APIPrefix + "/session/reauth`" + ` (403 ` + "`reauth_required`" + `), which API keys cannot do.
- **Bodies** are JSON (` + "`Content-Type: application/json`" + `), at most 64 KiB by default; unknown fields
  are refused. Field names are snake_case; times are RFC 3339.
- **Errors** are ` + "`application/problem+json`" + `:
  ` + "`" + `{"type":"about:blank","title":"validation_failed","status":422,"detail":"some fields are invalid","code":18,"temporary":false,"errors":[{"field":"name","message":"is required"}]}` + "`" + `.
  ` + "`errors`" + ` comes only with 422 and names every field the service found invalid; a body that
  cannot be decoded (an unknown field, a wrong type) is refused on its first such field. A 429
  (` + "`rate_limited`" + `) carries ` + "`Retry-After`" + ` in seconds, repeated as ` + "`retry_after`" + `.
- **Cross-origin** writes (POST, PUT, PATCH, DELETE from another site) are refused with 403.

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
	}
	return "admin"
}

// cell keeps a value inside its Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
