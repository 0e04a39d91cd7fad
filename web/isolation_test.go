package web_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/web"
)

// isolationCase is how to call one Player route successfully with the
// caller's own ids: the body to send (nil for none) and the status that
// success answers.
type isolationCase struct {
	body   any
	status int
}

// isolationCases has an entry for every Player route of the player API,
// by pattern. A route missing here fails the isolation test: a new route
// must say how to call it, so that it is tried against another player.
var isolationCases = map[string]isolationCase{
	"POST /api/v1/auth/logout":        {nil, http.StatusNoContent},
	"GET /api/v1/players/{player_id}": {nil, http.StatusOK},
	"PATCH /api/v1/players/{player_id}": {map[string]string{"display_name": "Mallory", "locale": "fr",
		"avatar_url": "https://evil.example/m.png"}, http.StatusOK},
	"POST /api/v1/players/{player_id}/email": {map[string]string{"email": "mallory@example.com",
		"password": "a long enough password"}, http.StatusOK},
	"DELETE /api/v1/players/{player_id}":                       {nil, http.StatusNoContent},
	"GET /api/v1/players/{player_id}/sessions":                 {nil, http.StatusOK},
	"DELETE /api/v1/players/{player_id}/sessions/{session_id}": {nil, http.StatusNoContent},
	"POST /api/v1/players/{player_id}/realtime-token":          {nil, http.StatusOK},
}

// victim is player B as the isolation test checks it: everything A must
// neither change nor see.
type victim struct {
	login   authResult
	other   authResult // a second session
	profile *tandem.PlayerAccount
	// sessions are B's session ids.
	sessions []string
}

func (e *testEnv) victimState(b authResult) (*tandem.PlayerAccount, []string) {
	e.t.Helper()
	ctx := context.Background()
	actor := e.playerActor(b.AccessToken)
	p, err := e.svc.Profile(ctx, actor, b.PlayerID)
	if err != nil {
		e.t.Fatalf("B's profile: %v", err)
	}
	list, err := e.svc.OwnSessions(ctx, actor, b.PlayerID)
	if err != nil {
		e.t.Fatalf("B's sessions: %v", err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return p, ids
}

// fillable are the Owns entries fillPath fills.
var fillable = []string{web.OwnsPlayerID, web.OwnsSessionID}

// fillPath puts a player id and a session id into a pattern path.
func fillPath(path, playerID, sessionID string) string {
	return strings.NewReplacer("{player_id}", playerID, "{session_id}", sessionID).Replace(path)
}

func TestPlayerRoutesRefuseAnotherPlayersResources(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		e := newPlayerEnv(t, b, nil, nil)
		// B is a guest like every A, so a request refused for A names a
		// resource that would otherwise accept it (linking an email, say).
		const bName = "Bob Secret"
		bDevice, bSecret := "bob-device", newSecret()
		v := victim{login: e.guestLogin(bDevice, bSecret, bName)}
		v.other = e.guestLogin(bDevice, bSecret, "")
		v.profile, v.sessions = e.victimState(v.login)
		// What no answer to A may contain: B's name, and B's session that
		// no request names.
		leaks := []string{bName, v.other.SessionID, v.other.AccessToken}

		checkVictim := func(t *testing.T, what string) {
			t.Helper()
			p, sessions := e.victimState(v.login)
			if diff := cmp.Diff(v.profile, p); diff != "" {
				t.Errorf("%s changed B's profile (-before +after):\n%s", what, diff)
			}
			if diff := cmp.Diff(v.sessions, sessions); diff != "" {
				t.Errorf("%s changed B's sessions (-before +after):\n%s", what, diff)
			}
		}

		seen := map[string]bool{}
		for _, rt := range web.PlayerAPIRoutes(e.svc) {
			if rt.Access != web.Player {
				continue
			}
			pattern := rt.Pattern()
			seen[pattern] = true
			t.Run(pattern, func(t *testing.T) {
				if len(rt.Owns) == 0 && !rt.OwnsNothing {
					t.Fatalf("%s declares neither Owns nor OwnsNothing", pattern)
				}
				for _, o := range rt.Owns {
					if !slices.Contains(fillable, o) {
						t.Fatalf("%s owns %q, which fillPath cannot fill with B's ids: teach it", pattern, o)
					}
				}
				tc, ok := isolationCases[pattern]
				if !ok {
					t.Fatalf("isolationCases has no entry for %s: say how to call it", pattern)
				}
				// A fresh A for every route: some end A's session or account.
				a := e.newGuest("Alice")
				call := func(path string) response {
					return e.do(e.client(), rt.Method, path, tc.body, bearer(a.AccessToken)...)
				}

				if len(rt.Owns) > 0 {
					attempts := []string{fillPath(rt.Path, v.login.PlayerID, v.login.SessionID)}
					if slices.Contains(rt.Owns, web.OwnsSessionID) {
						// A's own player id with B's session: only the service can refuse this one.
						attempts = append(attempts, fillPath(rt.Path, a.PlayerID, v.login.SessionID))
					}
					for _, path := range attempts {
						r := call(path)
						if r.StatusCode != http.StatusNotFound {
							t.Errorf("%s %s with A's token: %s, want 404", rt.Method, path, r)
						}
						for _, s := range leaks {
							if strings.Contains(string(r.body), s) {
								t.Errorf("%s %s leaks B's %q: %s", rt.Method, path, s, r)
							}
						}
						checkVictim(t, rt.Method+" "+path)
					}
				}

				path := fillPath(rt.Path, a.PlayerID, a.SessionID)
				if r := call(path); r.StatusCode != tc.status {
					t.Errorf("%s %s with A's own ids: %s, want %d", rt.Method, path, r, tc.status)
				}
				// Acting on A's own ids touches nothing of B's either.
				checkVictim(t, "A's own "+rt.Method+" "+path)
			})
		}
		for pattern := range isolationCases {
			if !seen[pattern] {
				t.Errorf("isolationCases names %s, which is not a Player route", pattern)
			}
		}
		// B's tokens still work after everything A tried.
		wantStatus(t, e.do(e.client(), "GET", "/api/v1/players/"+v.login.PlayerID, nil, bearer(v.login.AccessToken)...), http.StatusOK)
	})
}

func TestNewRefusesAPlayerRouteWithoutOwnership(t *testing.T) {
	svc := newPlayerEnv(t, onSQLite, nil, nil).svc
	ok := func(w http.ResponseWriter, r *http.Request) {}
	for _, tc := range []struct {
		name  string
		route web.Route
		want  string
	}{
		{"Player route declaring nothing",
			web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/friends", Access: web.Player, API: true, Handler: ok},
			"must declare"},
		{"public player API route declaring nothing",
			web.Route{Method: "POST", Path: "/api/v1/auth/magic", Access: web.Public, API: true, Handler: ok},
			"must declare"},
		{"both declarations",
			web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/x", Access: web.Player, API: true,
				Owns: []string{web.OwnsPlayerID}, OwnsNothing: true, Handler: ok},
			"both"},
		{"a player id in the path, OwnsNothing",
			web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/x", Access: web.Player, API: true, OwnsNothing: true, Handler: ok},
			"declares OwnsNothing but its path names {player_id}"},
		{"a wildcard of any other name, OwnsNothing",
			web.Route{Method: "GET", Path: "/api/v1/players/{id}/friends", Access: web.Player, API: true, OwnsNothing: true, Handler: ok},
			"declares OwnsNothing but its path names {id}"},
		{"a rest wildcard, OwnsNothing",
			web.Route{Method: "GET", Path: "/api/v1/files/{name...}", Access: web.Player, API: true, OwnsNothing: true, Handler: ok},
			"declares OwnsNothing but its path names {name}"},
		{"a public route with a wildcard",
			web.Route{Method: "POST", Path: "/api/v1/auth/magic/{code}", Access: web.Public, API: true, OwnsNothing: true, Handler: ok},
			"declares OwnsNothing but its path names {code}"},
		{"a wildcard of another name not declared beside the player id",
			web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/friends/{friend_id}", Access: web.Player, API: true,
				Owns: []string{web.OwnsPlayerID}, Handler: ok},
			`the path names {friend_id} but Owns does not declare "path:friend_id"`},
		{"a player id not declared beside another wildcard",
			web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/friends/{friend_id}", Access: web.Player, API: true,
				Owns: []string{"path:friend_id"}, Handler: ok},
			`the path names {player_id} but Owns does not declare "path:player_id"`},
		{"an entry declared twice",
			web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/y", Access: web.Player, API: true,
				Owns: []string{web.OwnsPlayerID, web.OwnsPlayerID}, Handler: ok},
			"twice"},
		{"a session id in the path not declared",
			web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/x/{session_id}", Access: web.Player, API: true,
				Owns: []string{web.OwnsPlayerID}, Handler: ok},
			"does not declare"},
		{"Owns naming no wildcard",
			web.Route{Method: "GET", Path: "/api/v1/me", Access: web.Player, API: true, Owns: []string{"path:player_id"}, Handler: ok},
			"not path:"},
		{"a public route owning something",
			web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/x", Access: web.Public, API: true,
				Owns: []string{web.OwnsPlayerID}, Handler: ok},
			"only Player routes"},
		{"a Player route elsewhere",
			web.Route{Method: "GET", Path: "/api/admin/v1/x", Access: web.Player, API: true, OwnsNothing: true, Handler: ok},
			"live under"},
		{"an admin route in the player API",
			web.Route{Method: "GET", Path: "/api/v1/x", Access: web.Admin, API: true, OwnsNothing: true, Handler: ok},
			"Public or Player"},
		{"a page in the player API",
			web.Route{Method: "GET", Path: "/api/v1/x", Access: web.Player, OwnsNothing: true, Handler: ok},
			"API routes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := web.New(web.Config{Service: svc, Routes: append(web.PlayerAPIRoutes(svc), tc.route)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := web.New(web.Config{Service: svc, Routes: web.PlayerAPIRoutes(svc)}); err != nil {
		t.Errorf("New refuses the player API itself: %v", err)
	}
	// A wildcard of any name is fine once declared.
	friends := web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/friends/{friend_id}", Access: web.Player, API: true,
		Owns: []string{web.OwnsPlayerID, "path:friend_id"}, Handler: ok}
	if _, err := web.New(web.Config{Service: svc, Routes: append(web.PlayerAPIRoutes(svc), friends)}); err != nil {
		t.Errorf("New refuses a route declaring every wildcard: %v", err)
	}
}

func TestServerRefusesAnotherPlayersIDBeforeTheHandler(t *testing.T) {
	var reached atomic.Int32
	echo := web.Route{Method: "GET", Path: "/api/v1/players/{player_id}/echo", Access: web.Player, API: true,
		Owns: []string{web.OwnsPlayerID}, Handler: func(w http.ResponseWriter, r *http.Request) {
			reached.Add(1)
			w.Write([]byte(web.PlayerFrom(r.Context()).PlayerID))
		}}
	e := newPlayerEnv(t, onSQLite, nil, func(c *web.Config) { c.Routes = append(c.Routes, echo) })
	a, b := e.newGuest("Alice"), e.newGuest("Bob")

	r := e.do(e.client(), "GET", "/api/v1/players/"+b.PlayerID+"/echo", nil, bearer(a.AccessToken)...)
	wantStatus(t, r, http.StatusNotFound)
	if p := r.problem(t); p.Title != "not_found" {
		t.Errorf("title %q, want not_found", p.Title)
	}
	if reached.Load() != 0 {
		t.Fatal("the handler ran for another player's id")
	}
	r = e.do(e.client(), "GET", "/api/v1/players/"+a.PlayerID+"/echo", nil, bearer(a.AccessToken)...)
	wantStatus(t, r, http.StatusOK)
	if string(r.body) != a.PlayerID || reached.Load() != 1 {
		t.Errorf("the handler saw player %q (%d calls), want %s once", r.body, reached.Load(), a.PlayerID)
	}
}
