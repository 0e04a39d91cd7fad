package admin_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/admin"
	"github.com/tandemhq/tandem/internal/clustertest"
	"github.com/tandemhq/tandem/internal/servicetest"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// matchmakingEnv is testEnv whose service has the bus as its cluster and
// its matchmaking, with the store at hand to write matches as the event
// consumer would.
type matchmakingEnv struct {
	*testEnv
	db  tandem.Store
	bus *natsbus.Bus
}

func newMatchmakingEnv(t *testing.T) *matchmakingEnv {
	t.Helper()
	bus := clustertest.Connect(t, clustertest.StartNATS(t), natsbus.Config{Name: "web", NodeTTL: time.Hour})
	log := slog.New(slog.DiscardHandler)
	se := servicetest.New(t, func(c *service.Config) { c.Logger, c.Cluster, c.Matchmaking = log, bus, bus })
	e := &testEnv{t: t, svc: se.Service, clock: se.Clock, roles: se.Roles}
	cfg := admin.Config{Service: e.svc, Cookies: web.Cookies{}, Logger: log}
	s, err := web.New(web.Config{Service: e.svc, Logger: log, Routes: admin.Routes(cfg), HTMLError: admin.HTMLError(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return &matchmakingEnv{testEnv: e, db: se.DB, bus: bus}
}

func (e *matchmakingEnv) login(name, role string) *browser {
	e.t.Helper()
	e.createAdmin(name, role)
	b := e.browser()
	b.login(name, testPassword)
	return b
}

func (e *matchmakingEnv) storedQueue(name string) (*tandem.MatchQueueRecord, error) {
	var q *tandem.MatchQueueRecord
	err := e.db.View(context.Background(), func(tx tandem.Tx) (err error) {
		q, err = tx.MatchQueue(context.Background(), name)
		return err
	})
	return q, err
}

func TestQueuePagesCreateShowSaveAndDelete(t *testing.T) {
	e := newMatchmakingEnv(t)
	b := e.login("olga", tandem.RoleOperator)

	r := b.get("/admin/matchmaking")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "No queues yet.", `action="/admin/matchmaking"`)

	r = b.post("/admin/matchmaking", url.Values{"name": {"duel"}, "room_type": {scriptLabel}, "teams": {"2"}, "team_size": {"1"}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/admin/matchmaking/duel?done=queue-saved" {
		t.Fatalf("create went to %q", loc)
	}
	if err := e.db.Update(context.Background(), func(tx tandem.Tx) error {
		_, err := tx.InsertMatches(context.Background(), []tandem.MatchRecord{{ID: "m1", Queue: "duel", RoomID: "room-9", Node: "n1",
			Teams: [][]string{{"p-<1>"}, {"p2"}}, WaitMS: 1500, At: time.Now().Add(-time.Minute)}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.bus.CreateTicket(context.Background(), tandem.MatchTicket{ID: "t1", Queue: "duel", PlayerID: "p3",
		State: tandem.TicketSearching, CreatedAt: time.Now(), Node: "n1"}); err != nil {
		t.Fatal(err)
	}

	r = b.get("/admin/matchmaking")
	wantContains(t, r, `<a href="/admin/matchmaking/duel"><code>duel</code></a>`, "&lt;script&gt;alert(1)&lt;/script&gt;",
		"2 teams × 1", "1 searching", "1500 ms")
	wantLacks(t, r, scriptLabel)

	r = b.get("/admin/matchmaking/duel?done=queue-saved")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Queue saved.", `<a href="/admin/rooms/room-9"><code>room-9</code></a>`, "<code>p-&lt;1&gt;</code>",
		"1500 ms", `name="config"`, `hx-confirm="Delete queue duel?`, "&lt;script&gt;alert(1)&lt;/script&gt;")
	wantLacks(t, r, scriptLabel, "p-<1>")

	// The editor refuses what the matchmaker would, field by field, and
	// keeps what was typed.
	bad := `{"room_type": "arena", "teams": 2, "team_size": 0, "rules": [{"property": "skill", "kind": "nearby"}]}`
	r = b.post("/admin/matchmaking/duel", url.Values{"config": {bad}}, htmx...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "<code>team_size</code>: ", "<code>rules[0].kind</code>", "&#34;nearby&#34;")
	if q, err := e.storedQueue("duel"); err != nil || q.TeamSize != 1 {
		t.Fatalf("queue after a refused save: %+v, %v; want it unchanged", q, err)
	}
	r = b.post("/admin/matchmaking/duel", url.Values{"config": {`{"room_type": "arena", "teams": 2, "team_size": 1, "typo": 1}`}}, htmx...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "<code>config</code>: ", "typo")

	good := `{"name": "ignored", "room_type": "arena", "teams": 2, "team_size": 2, "backfill": true}`
	r = b.post("/admin/matchmaking/duel", url.Values{"config": {good}})
	wantStatus(t, r, http.StatusSeeOther)
	q, err := e.storedQueue("duel")
	if err != nil || q.TeamSize != 2 || !q.Backfill || q.UpdatedBy != "olga" {
		t.Fatalf("queue after the save: %+v, %v; want 2×2 with backfill by olga", q, err)
	}
	if _, err := e.storedQueue("ignored"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Errorf("a name in the JSON made a queue: %v", err)
	}

	// The polled fragment alone, then the poll of a deleted queue stops.
	r = b.get("/admin/matchmaking/duel", "HX-Request", "true", "HX-Target", "queue-live")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "Tickets by state")
	wantLacks(t, r, `name="config"`, "<nav")

	r = b.post("/admin/matchmaking/duel/delete", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if _, err := e.storedQueue("duel"); tandem.ErrorCodeOf(err) != tandem.ENotFound {
		t.Fatalf("queue after the delete: %v, want not found", err)
	}
	r = b.get("/admin/matchmaking/duel", "HX-Request", "true", "HX-Target", "queue-live")
	wantStatus(t, r, 286)
	wantContains(t, r, "no longer exists")
	wantStatus(t, b.get("/admin/matchmaking/duel"), http.StatusNotFound)
}

func TestQueueFormShowsTheRefusalsOfANewQueue(t *testing.T) {
	e := newMatchmakingEnv(t)
	b := e.login("olga", tandem.RoleOperator)
	r := b.post("/admin/matchmaking", url.Values{"name": {"bad name"}, "room_type": {""}, "teams": {"x"}}, htmx...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "must be a whole number", `value="bad name"`)
	r = b.post("/admin/matchmaking", url.Values{"name": {"bad name"}, "room_type": {""}}, htmx...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	wantContains(t, r, "<code>name</code>: ", "<code>room_type</code>: is required")
}

func TestQueuePagesAreReadOnlyWithoutMatchmakingManage(t *testing.T) {
	e := newMatchmakingEnv(t)
	if _, err := e.svc.PutQueue(context.Background(), service.CLIActor("test"),
		tandem.MatchQueue{Name: "ffa", RoomType: "relay", MinPlayers: 2, MaxPlayers: 8}); err != nil {
		t.Fatal(err)
	}
	b := e.login("sam", tandem.RoleSupport)
	r := b.get("/admin/matchmaking")
	wantStatus(t, r, http.StatusOK)
	wantContains(t, r, "2–8 players")
	wantLacks(t, r, "Create queue")
	r = b.get("/admin/matchmaking/ffa")
	wantStatus(t, r, http.StatusOK)
	wantLacks(t, r, `name="config"`, "Delete queue")
	wantStatus(t, b.post("/admin/matchmaking/ffa", url.Values{"config": {`{"room_type": "relay"}`}}), http.StatusForbidden)
	wantStatus(t, b.post("/admin/matchmaking/ffa/delete", nil), http.StatusForbidden)
	if !strings.Contains(b.get("/admin").body, `href="/admin/matchmaking"`) {
		t.Errorf("support's navigation lacks Matchmaking")
	}
}

func TestNewQueueFormRefusesATakenName(t *testing.T) {
	e := newMatchmakingEnv(t)
	b := e.login("olga", tandem.RoleOperator)
	wantStatus(t, b.post("/admin/matchmaking", url.Values{"name": {"duel"}, "room_type": {"arena"}, "teams": {"2"}, "team_size": {"1"}}),
		http.StatusSeeOther)
	r := b.post("/admin/matchmaking", url.Values{"name": {"duel"}, "room_type": {"relay"}, "min_players": {"2"}, "max_players": {"8"}}, htmx...)
	wantStatus(t, r, http.StatusConflict)
	wantContains(t, r, "already exists", `value="relay"`)
	if q, err := e.storedQueue("duel"); err != nil || q.RoomType != "arena" || q.Teams != 2 {
		t.Errorf("queue after a second create: %+v, %v; want the first one", q, err)
	}
}

// updatedAtOnPage is the editor's hidden updated_at.
func updatedAtOnPage(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`name="updated_at" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no updated_at in the editor:\n%s", body)
	}
	return m[1]
}

func TestQueueEditorRefusesToOverwriteAChangeMadeSinceItLoaded(t *testing.T) {
	e := newMatchmakingEnv(t)
	olga, petra := e.login("olga", tandem.RoleOperator), e.login("petra", tandem.RoleOperator)
	if _, err := e.svc.PutQueue(context.Background(), service.CLIActor("test"), tandem.MatchQueue{Name: "duel", RoomType: "arena", Teams: 2, TeamSize: 1}); err != nil {
		t.Fatal(err)
	}
	olgaLoaded := updatedAtOnPage(t, olga.get("/admin/matchmaking/duel").body)
	petraLoaded := updatedAtOnPage(t, petra.get("/admin/matchmaking/duel").body)
	e.clock.Advance(time.Second)

	r := petra.post("/admin/matchmaking/duel", url.Values{"config": {`{"room_type": "arena", "teams": 2, "team_size": 2}`}, "updated_at": {petraLoaded}})
	wantStatus(t, r, http.StatusSeeOther)

	mine := `{"room_type": "arena", "teams": 2, "team_size": 1, "backfill": true}`
	r = olga.post("/admin/matchmaking/duel", url.Values{"config": {mine}, "updated_at": {olgaLoaded}}, htmx...)
	wantStatus(t, r, http.StatusConflict)
	wantContains(t, r, "the queue changed since it was loaded", "by petra", `&#34;team_size&#34;: 2`, "&#34;backfill&#34;: true")
	if q, err := e.storedQueue("duel"); err != nil || q.TeamSize != 2 || q.Backfill {
		t.Fatalf("queue after the stale save: %+v, %v; want petra's", q, err)
	}

	// Having seen petra's, a second save replaces it.
	again := updatedAtOnPage(t, r.body)
	if again == olgaLoaded {
		t.Fatalf("the conflict page carries the stale updated_at %s again", again)
	}
	r = olga.post("/admin/matchmaking/duel", url.Values{"config": {mine}, "updated_at": {again}})
	wantStatus(t, r, http.StatusSeeOther)
	if q, err := e.storedQueue("duel"); err != nil || q.TeamSize != 1 || !q.Backfill || q.UpdatedBy != "olga" {
		t.Errorf("queue after the second save: %+v, %v; want olga's", q, err)
	}
}
