package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/servicetest"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/admin"
	"github.com/tandemhq/tandem/web"
)

// routeRule is what a route may be reached by.
type routeRule struct {
	Access     web.Access
	Permission tandem.Permission
}

const (
	public  = web.Public
	pending = web.Pending
	adm     = web.Admin
	player  = web.Player
)

// expectedRoutes is every route of the web server with its access and
// permission, written out by hand: a new route, or a changed permission,
// fails TestRoutePermissions until this table says the same.
var expectedRoutes = map[string]routeRule{
	"GET /healthz": {public, ""},

	// JSON API.
	"POST /api/admin/v1/session":         {public, ""},
	"POST /api/admin/v1/session/mfa":     {pending, ""},
	"POST /api/admin/v1/session/reauth":  {adm, ""},
	"DELETE /api/admin/v1/session":       {pending, ""},
	"GET /api/admin/v1/me":               {adm, ""},
	"GET /api/admin/v1/overview":         {adm, ""},
	"GET /api/admin/v1/permissions":      {adm, ""},
	"GET /api/admin/v1/admins":           {adm, tandem.PermAdminsManage},
	"POST /api/admin/v1/admins":          {adm, tandem.PermAdminsManage},
	"GET /api/admin/v1/admins/{id}":      {adm, tandem.PermAdminsManage},
	"PATCH /api/admin/v1/admins/{id}":    {adm, tandem.PermAdminsManage},
	"GET /api/admin/v1/roles":            {adm, ""},
	"POST /api/admin/v1/roles":           {adm, tandem.PermRolesManage},
	"GET /api/admin/v1/roles/{id}":       {adm, ""},
	"PUT /api/admin/v1/roles/{id}":       {adm, tandem.PermRolesManage},
	"DELETE /api/admin/v1/roles/{id}":    {adm, tandem.PermRolesManage},
	"GET /api/admin/v1/api-keys":         {adm, tandem.PermAdminsManage},
	"POST /api/admin/v1/api-keys":        {adm, tandem.PermAdminsManage},
	"DELETE /api/admin/v1/api-keys/{id}": {adm, tandem.PermAdminsManage},
	"GET /api/admin/v1/audit":            {adm, tandem.PermAuditRead},

	// Admin JSON API: players.
	"GET /api/admin/v1/players":                       {adm, tandem.PermPlayersRead},
	"GET /api/admin/v1/players/{id}":                  {adm, tandem.PermPlayersRead},
	"PATCH /api/admin/v1/players/{id}":                {adm, tandem.PermPlayersWrite},
	"POST /api/admin/v1/players/{id}/bans":            {adm, tandem.PermPlayersBan},
	"DELETE /api/admin/v1/players/{id}/bans/{ban_id}": {adm, tandem.PermPlayersBan},
	"POST /api/admin/v1/players/{id}/logout":          {adm, tandem.PermPlayersBan},
	"POST /api/admin/v1/players/{id}/notes":           {adm, tandem.PermPlayersWrite},
	"GET /api/admin/v1/players/{id}/live":             {adm, tandem.PermPlayersRead},
	"GET /api/admin/v1/nodes":                         {adm, tandem.PermRoomsRead},
	"GET /api/admin/v1/rooms":                         {adm, tandem.PermRoomsRead},
	"GET /api/admin/v1/rooms/{id}":                    {adm, tandem.PermRoomsRead},
	"GET /api/admin/v1/commands":                      {adm, tandem.PermRoomsRead},
	"POST /api/admin/v1/commands":                     {adm, tandem.PermRoomsManage},
	"GET /api/admin/v1/matchmaking/queues":            {adm, tandem.PermRoomsRead},
	"GET /api/admin/v1/matchmaking/queues/{name}":     {adm, tandem.PermRoomsRead},
	"PUT /api/admin/v1/matchmaking/queues/{name}":     {adm, tandem.PermMatchmakingManage},
	"DELETE /api/admin/v1/matchmaking/queues/{name}":  {adm, tandem.PermMatchmakingManage},

	// Player API and the realtime token keys.
	"GET /.well-known/jwks.json":                               {public, ""},
	"POST /api/v1/auth/guest":                                  {public, ""},
	"POST /api/v1/auth/register":                               {public, ""},
	"POST /api/v1/auth/login":                                  {public, ""},
	"POST /api/v1/auth/refresh":                                {public, ""},
	"POST /api/v1/auth/logout":                                 {player, ""},
	"GET /api/v1/players/{player_id}":                          {player, ""},
	"PATCH /api/v1/players/{player_id}":                        {player, ""},
	"POST /api/v1/players/{player_id}/email":                   {player, ""},
	"DELETE /api/v1/players/{player_id}":                       {player, ""},
	"GET /api/v1/players/{player_id}/sessions":                 {player, ""},
	"DELETE /api/v1/players/{player_id}/sessions/{session_id}": {player, ""},
	"POST /api/v1/players/{player_id}/realtime-token":          {player, ""},

	// Admin UI.
	"GET /{$}":                         {public, ""},
	"GET /admin/assets/{file...}":      {public, ""},
	"GET /admin/login":                 {public, ""},
	"POST /admin/login":                {public, ""},
	"GET /admin/mfa":                   {pending, ""},
	"POST /admin/mfa":                  {pending, ""},
	"GET /admin/mfa/enrol":             {pending, ""},
	"POST /admin/mfa/enrol":            {pending, ""},
	"GET /admin/mfa/qr.png":            {pending, ""},
	"POST /admin/mfa/confirm":          {pending, ""},
	"POST /admin/logout":               {pending, ""},
	"GET /admin":                       {adm, ""},
	"GET /admin/admins":                {adm, tandem.PermAdminsManage},
	"POST /admin/admins":               {adm, tandem.PermAdminsManage},
	"POST /admin/admins/{id}":          {adm, tandem.PermAdminsManage},
	"GET /admin/roles":                 {adm, ""},
	"POST /admin/roles":                {adm, tandem.PermRolesManage},
	"GET /admin/roles/{id}":            {adm, ""},
	"POST /admin/roles/{id}":           {adm, tandem.PermRolesManage},
	"POST /admin/roles/{id}/delete":    {adm, tandem.PermRolesManage},
	"GET /admin/api-keys":              {adm, tandem.PermAdminsManage},
	"POST /admin/api-keys":             {adm, tandem.PermAdminsManage},
	"POST /admin/api-keys/{id}/revoke": {adm, tandem.PermAdminsManage},
	"GET /admin/account":               {adm, ""},
	"POST /admin/account/password":     {adm, ""},
	"GET /admin/reauth":                {adm, ""},
	"POST /admin/reauth":               {adm, ""},
	"GET /admin/audit":                 {adm, tandem.PermAuditRead},

	// Admin UI: players.
	"GET /admin/players":                          {adm, tandem.PermPlayersRead},
	"GET /admin/players/{id}":                     {adm, tandem.PermPlayersRead},
	"POST /admin/players/{id}":                    {adm, tandem.PermPlayersWrite},
	"POST /admin/players/{id}/bans":               {adm, tandem.PermPlayersBan},
	"POST /admin/players/{id}/bans/{ban_id}/lift": {adm, tandem.PermPlayersBan},
	"POST /admin/players/{id}/logout":             {adm, tandem.PermPlayersBan},
	"POST /admin/players/{id}/notes":              {adm, tandem.PermPlayersWrite},
	"POST /admin/players/{id}/kick":               {adm, tandem.PermRoomsManage},
	"POST /admin/players/{id}/notice":             {adm, tandem.PermRoomsManage},
	"GET /admin/nodes":                            {adm, tandem.PermRoomsRead},
	"POST /admin/nodes/{id}/drain":                {adm, tandem.PermRoomsManage},
	"GET /admin/rooms":                            {adm, tandem.PermRoomsRead},
	"GET /admin/rooms/{id}":                       {adm, tandem.PermRoomsRead},
	"POST /admin/rooms/{id}/close":                {adm, tandem.PermRoomsManage},
	"POST /admin/rooms/{id}/lock":                 {adm, tandem.PermRoomsManage},
	"POST /admin/rooms/{id}/unlock":               {adm, tandem.PermRoomsManage},
	"POST /admin/rooms/{id}/notice":               {adm, tandem.PermRoomsManage},
	"POST /admin/rooms/{id}/kick":                 {adm, tandem.PermRoomsManage},
	"GET /admin/commands":                         {adm, tandem.PermRoomsRead},
	"POST /admin/commands/notice":                 {adm, tandem.PermRoomsManage},
	"GET /admin/matchmaking":                      {adm, tandem.PermRoomsRead},
	"POST /admin/matchmaking":                     {adm, tandem.PermMatchmakingManage},
	"GET /admin/matchmaking/{queue}":              {adm, tandem.PermRoomsRead},
	"POST /admin/matchmaking/{queue}":             {adm, tandem.PermMatchmakingManage},
	"POST /admin/matchmaking/{queue}/delete":      {adm, tandem.PermMatchmakingManage},
}

// ownsNothing stands for a route declaring OwnsNothing in expectedOwnership.
const ownsNothing = "nothing"

// expectedOwnership is what every player API route declares it owns
// (web.Route.Owns), written out by hand like expectedRoutes: a route that
// stops declaring a field it names fails TestPlayerRouteOwnership.
var expectedOwnership = map[string][]string{
	"POST /api/v1/auth/guest":                                  {ownsNothing},
	"POST /api/v1/auth/register":                               {ownsNothing},
	"POST /api/v1/auth/login":                                  {ownsNothing},
	"POST /api/v1/auth/refresh":                                {ownsNothing},
	"POST /api/v1/auth/logout":                                 {ownsNothing},
	"GET /api/v1/players/{player_id}":                          {web.OwnsPlayerID},
	"PATCH /api/v1/players/{player_id}":                        {web.OwnsPlayerID},
	"POST /api/v1/players/{player_id}/email":                   {web.OwnsPlayerID},
	"DELETE /api/v1/players/{player_id}":                       {web.OwnsPlayerID},
	"GET /api/v1/players/{player_id}/sessions":                 {web.OwnsPlayerID},
	"DELETE /api/v1/players/{player_id}/sessions/{session_id}": {web.OwnsPlayerID, web.OwnsSessionID},
	"POST /api/v1/players/{player_id}/realtime-token":          {web.OwnsPlayerID},
}

// testRoutes builds the server's route table over a throwaway database.
func testRoutes(t *testing.T) []web.Route {
	t.Helper()
	svc := servicetest.New(t, nil).Service
	cookies := web.CookiesFor("http://127.0.0.1")
	return routes(svc, cookies, admin.Config{Service: svc, Cookies: cookies})
}

func TestRoutePermissions(t *testing.T) {
	got := map[string]routeRule{}
	for _, r := range testRoutes(t) {
		if _, dup := got[r.Pattern()]; dup {
			t.Errorf("route %s is declared twice", r.Pattern())
		}
		got[r.Pattern()] = routeRule{r.Access, r.Permission}
	}
	if diff := cmp.Diff(expectedRoutes, got); diff != "" {
		t.Errorf("routes differ from the expected table (-expected +declared):\n%s\n"+
			"A new or changed route needs its line in expectedRoutes (app/routes_test.go).", diff)
	}
}

func TestPlayerRouteOwnership(t *testing.T) {
	got := map[string][]string{}
	for _, r := range testRoutes(t) {
		switch {
		case r.OwnsNothing:
			got[r.Pattern()] = []string{ownsNothing}
		case len(r.Owns) > 0:
			got[r.Pattern()] = r.Owns
		case strings.HasPrefix(r.Path, web.PlayerAPIPrefix+"/"):
			got[r.Pattern()] = nil
		}
	}
	if diff := cmp.Diff(expectedOwnership, got); diff != "" {
		t.Errorf("player route ownership differs from the expected table (-expected +declared):\n%s\n"+
			"A new or changed player route needs its line in expectedOwnership (app/routes_test.go).", diff)
	}
}

// apiDocPath is docs/api.md seen from the package directory.
var apiDocPath = filepath.Join("..", "docs", "api.md")

func TestAPIDocMatchesRoutes(t *testing.T) {
	want := string(web.APIDoc(testRoutes(t)))
	if *update {
		if err := os.WriteFile(apiDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", apiDocPath)
		return
	}
	got, err := os.ReadFile(apiDocPath)
	if err != nil {
		t.Fatalf("%v\nGenerate it with: go test ./app -run TestAPIDocMatchesRoutes -update", err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("docs/api.md differs from the route table (-generated +file):\n%s\n"+
			"Regenerate it with: go test ./app -run TestAPIDocMatchesRoutes -update", diff)
	}
}
