package web

import (
	"net/http"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
)

// MatchmakingAPIRoutes returns the admin JSON API's matchmaking routes:
// the queues, each with its depth and last hour's figures. Each route's
// Permission mirrors the one its service method checks.
func MatchmakingAPIRoutes(svc *service.Service) []Route {
	a := &matchmakingAPI{svc: svc}
	const p = APIPrefix + "/matchmaking/queues"
	return []Route{
		{Method: http.MethodGet, Path: p, Access: Admin, Permission: tandem.PermRoomsRead, API: true, Handler: a.queues,
			Summary: "matchmaking queues by name, each {queue, updated_by, depth (tickets by state, null when the bus cannot be read), " +
				"depth_unavailable, matches_last_hour, wait_p50_ms, wait_p95_ms}"},
		{Method: http.MethodGet, Path: p + "/{name}", Access: Admin, Permission: tandem.PermRoomsRead, API: true, Handler: a.queue,
			Summary: "one queue as in the list, with recent (its latest 50 matches, newest first: id, room_id, node, teams, wait_ms, backfill, at; [] without any)"},
		{Method: http.MethodPut, Path: p + "/{name}", Access: Admin, Permission: tandem.PermMatchmakingManage, API: true,
			Body: "MatchQueue JSON (the name is the path's)", Handler: a.putQueue,
			Summary: "create or replace a queue; realtime nodes get it within seconds; 422 names each bad field (\"rules[1].max\"); " +
				"with updated_at (the queue's as read), 409 when the queue changed or was deleted since; without it, whatever is stored is replaced"},
		{Method: http.MethodDelete, Path: p + "/{name}", Access: Admin, Permission: tandem.PermMatchmakingManage, API: true, Handler: a.deleteQueue,
			Summary: "delete a queue: nodes stop matching it and its live tickets are cancelled (reason queue_deleted)"},
	}
}

type matchmakingAPI struct{ svc *service.Service }

type queueJSON struct {
	Queue            tandem.MatchQueue          `json:"queue"`
	UpdatedBy        string                     `json:"updated_by"`
	Depth            map[tandem.TicketState]int `json:"depth"`
	DepthUnavailable string                     `json:"depth_unavailable"`
	MatchesLastHour  int                        `json:"matches_last_hour"`
	WaitP50MS        int64                      `json:"wait_p50_ms"`
	WaitP95MS        int64                      `json:"wait_p95_ms"`
	// Recent: the list leaves it out (nil); one queue has it always,
	// empty without matches.
	Recent []matchJSON `json:"recent,omitzero"`
}

type matchJSON struct {
	ID       string     `json:"id"`
	RoomID   string     `json:"room_id"`
	Node     string     `json:"node"`
	Teams    [][]string `json:"teams"`
	WaitMS   int64      `json:"wait_ms"`
	Backfill bool       `json:"backfill"`
	At       time.Time  `json:"at"`
}

func queueOut(v *service.QueueView) queueJSON {
	out := queueJSON{Queue: v.Queue.MatchQueue, UpdatedBy: v.Queue.UpdatedBy, Depth: v.Depth, DepthUnavailable: v.DepthUnavailable,
		MatchesLastHour: v.MatchesLastHour, WaitP50MS: v.WaitP50MS, WaitP95MS: v.WaitP95MS}
	if out.Depth == nil && v.DepthUnavailable == "" {
		out.Depth = map[tandem.TicketState]int{}
	}
	for _, m := range v.Recent {
		teams := m.Teams
		if teams == nil {
			teams = [][]string{}
		}
		out.Recent = append(out.Recent, matchJSON{ID: m.ID, RoomID: m.RoomID, Node: m.Node, Teams: teams, WaitMS: m.WaitMS,
			Backfill: m.Backfill, At: m.At})
	}
	return out
}

func (a *matchmakingAPI) queues(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.Queues(r.Context(), ActorFrom(r.Context()))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := make([]queueJSON, len(list))
	for i := range list {
		out[i] = queueOut(&list[i])
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *matchmakingAPI) queue(w http.ResponseWriter, r *http.Request) {
	v, err := a.svc.Queue(r.Context(), ActorFrom(r.Context()), r.PathValue("name"))
	if err != nil {
		WriteError(w, r, err)
		return
	}
	out := queueOut(v)
	if out.Recent == nil {
		out.Recent = []matchJSON{}
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *matchmakingAPI) putQueue(w http.ResponseWriter, r *http.Request) {
	var q tandem.MatchQueue
	if err := DecodeJSON(w, r, &q); err != nil {
		WriteError(w, r, err)
		return
	}
	q.Name = r.PathValue("name")
	stored, err := a.svc.PutQueue(r.Context(), ActorFrom(r.Context()), q)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, struct {
		Queue     tandem.MatchQueue `json:"queue"`
		UpdatedBy string            `json:"updated_by"`
	}{stored.MatchQueue, stored.UpdatedBy})
}

func (a *matchmakingAPI) deleteQueue(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DeleteQueue(r.Context(), ActorFrom(r.Context()), r.PathValue("name")); err != nil {
		WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
