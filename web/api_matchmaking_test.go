package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/clustertest"
	"github.com/tandemhq/tandem/internal/servicetest"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

const queuesPath = "/api/admin/v1/matchmaking/queues"

// matchmakingAPIEnv is the admin API on a service with the bus as its
// cluster and matchmaking, with an operator's and a viewer's API key.
func matchmakingAPIEnv(t *testing.T) (e *testEnv, c *http.Client, ops, viewer []string) {
	bus := clustertest.Connect(t, clustertest.StartNATS(t), natsbus.Config{Name: "web", NodeTTL: time.Hour, RequestTimeout: time.Second})
	log := slog.New(slog.DiscardHandler)
	se := servicetest.New(t, func(c *service.Config) { c.Logger, c.Cluster, c.Matchmaking = log, bus, bus })
	e = &testEnv{t: t, store: se.Store, svc: se.Service, clock: se.Clock, logs: &syncBuffer{}, roles: se.Roles}
	s, err := web.New(web.Config{Service: e.svc, Logger: log, Routes: web.APIRoutes(e.svc, web.Cookies{})})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)

	opsKey, _ := e.apiKey("ops", e.roles[tandem.RoleOperator])
	viewKey, _ := e.apiKey("view", e.roles[tandem.RoleViewer])
	return e, e.client(), []string{"Authorization", "Bearer " + opsKey}, []string{"Authorization", "Bearer " + viewKey}
}

func TestMatchmakingQueueAPIPutsReadsAndDeletes(t *testing.T) {
	e, c, ops, viewer := matchmakingAPIEnv(t)
	const p = queuesPath

	// The name is the path's; a field the queue lacks is refused.
	r := e.do(c, "PUT", p+"/duel", `{"name": "other", "room_type": "arena", "teams": 2, "team_size": 1}`, ops...)
	wantStatus(t, r, http.StatusOK)
	var put struct {
		Queue     tandem.MatchQueue `json:"queue"`
		UpdatedBy string            `json:"updated_by"`
	}
	r.decode(t, &put)
	if put.Queue.Name != "duel" || put.UpdatedBy != "ops" || put.Queue.UpdatedAt.IsZero() {
		t.Errorf("PUT answered %+v", put)
	}
	wantStatus(t, e.do(c, "PUT", p+"/duel", `{"room_type": "arena", "tems": 2}`, ops...), http.StatusUnprocessableEntity)
	r = e.do(c, "PUT", p+"/duel", `{"room_type": "arena", "teams": 2, "team_size": 0}`, ops...)
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if pr := r.problem(t); len(pr.Errors) == 0 || pr.Errors[0].Field != "team_size" {
		t.Errorf("422 errors %+v, want team_size", pr.Errors)
	}
	wantStatus(t, e.do(c, "PUT", p+"/duel", `{"room_type": "arena", "teams": 2, "team_size": 1}`, viewer...), http.StatusForbidden)

	if err := e.store.Update(context.Background(), func(tx tandem.Tx) error {
		_, err := tx.InsertMatches(context.Background(), []tandem.MatchRecord{{ID: "m1", Queue: "duel", RoomID: "r1", Node: "n1",
			Teams: [][]string{{"a"}, {"b"}}, WaitMS: 700, At: e.clock.Now().Add(-time.Minute)}})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	type queueOut struct {
		Queue            tandem.MatchQueue          `json:"queue"`
		Depth            map[tandem.TicketState]int `json:"depth"`
		DepthUnavailable string                     `json:"depth_unavailable"`
		MatchesLastHour  int                        `json:"matches_last_hour"`
		WaitP50MS        int64                      `json:"wait_p50_ms"`
		Recent           []tandem.MatchRecord       `json:"recent"`
	}
	var list []queueOut
	r = e.do(c, "GET", p, nil, viewer...)
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &list)
	if len(list) != 1 || list[0].Queue.Name != "duel" || list[0].MatchesLastHour != 1 || list[0].WaitP50MS != 700 ||
		list[0].Depth == nil || list[0].DepthUnavailable != "" {
		t.Errorf("GET queues = %+v", list)
	}
	var one queueOut
	r = e.do(c, "GET", p+"/duel", nil, viewer...)
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &one)
	if len(one.Recent) != 1 || one.Recent[0].ID != "m1" || len(one.Recent[0].Teams) != 2 {
		t.Errorf("GET queue = %+v, want m1 of two teams", one)
	}

	wantStatus(t, e.do(c, "DELETE", p+"/duel", nil, viewer...), http.StatusForbidden)
	wantStatus(t, e.do(c, "DELETE", p+"/duel", nil, ops...), http.StatusNoContent)
	wantStatus(t, e.do(c, "DELETE", p+"/duel", nil, ops...), http.StatusNotFound)
	wantStatus(t, e.do(c, "GET", p+"/duel", nil, viewer...), http.StatusNotFound)
}

func TestMatchmakingQueueAPIPutWithAStaleUpdatedAtIsAConflict(t *testing.T) {
	e, c, ops, viewer := matchmakingAPIEnv(t)
	const p = queuesPath + "/duel"
	wantStatus(t, e.do(c, "PUT", p, `{"room_type": "arena", "teams": 2, "team_size": 1}`, ops...), http.StatusOK)

	// A single queue without matches has recent, empty.
	r := e.do(c, "GET", p, nil, viewer...)
	wantStatus(t, r, http.StatusOK)
	var loaded struct {
		Queue  tandem.MatchQueue `json:"queue"`
		Recent *[]any            `json:"recent"`
	}
	r.decode(t, &loaded)
	if loaded.Recent == nil || len(*loaded.Recent) != 0 {
		t.Errorf("GET of a queue without matches: recent %v in %s, want []", loaded.Recent, r)
	}

	e.clock.Advance(time.Second)
	theirs := loaded.Queue
	theirs.TeamSize = 2
	wantStatus(t, e.do(c, "PUT", p, theirs, ops...), http.StatusOK)

	mine := loaded.Queue
	mine.Backfill = true
	r = e.do(c, "PUT", p, mine, ops...)
	wantStatus(t, r, http.StatusConflict)
	if pr := r.problem(t); !strings.Contains(pr.Detail+pr.Title, "the queue changed since it was loaded") {
		t.Errorf("409 problem %+v", pr)
	}

	// Without updated_at, the PUT replaces whatever is stored.
	mine.UpdatedAt = time.Time{}
	wantStatus(t, e.do(c, "PUT", p, mine, ops...), http.StatusOK)
	var now struct {
		Queue tandem.MatchQueue `json:"queue"`
	}
	e.do(c, "GET", p, nil, viewer...).decode(t, &now)
	if !now.Queue.Backfill || now.Queue.TeamSize != 1 {
		t.Errorf("queue after the PUT without updated_at: %+v", now.Queue)
	}
}
