package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/internal/clustertest"
	"github.com/tandemhq/tandem/internal/servicetest"
	"github.com/tandemhq/tandem/natsbus"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

func TestMatchmakingQueueAPIPutsReadsAndDeletes(t *testing.T) {
	bus := clustertest.Connect(t, clustertest.StartNATS(t), natsbus.Config{Name: "web", NodeTTL: time.Hour, RequestTimeout: time.Second})
	log := slog.New(slog.DiscardHandler)
	se := servicetest.New(t, func(c *service.Config) { c.Logger, c.Cluster, c.Matchmaking = log, bus, bus })
	e := &testEnv{t: t, store: se.Store, svc: se.Service, clock: se.Clock, logs: &syncBuffer{}, roles: se.Roles}
	s, err := web.New(web.Config{Service: e.svc, Logger: log, Routes: web.APIRoutes(e.svc, web.Cookies{})})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)

	c := e.client()
	opsKey, _ := e.apiKey("ops", e.roles[tandem.RoleOperator])
	viewKey, _ := e.apiKey("view", e.roles[tandem.RoleViewer])
	ops := []string{"Authorization", "Bearer " + opsKey}
	viewer := []string{"Authorization", "Bearer " + viewKey}
	const p = "/api/admin/v1/matchmaking/queues"

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
