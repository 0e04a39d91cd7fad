package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/service"
	"github.com/tandemhq/tandem/web"
)

// The matchmaking pages: the queues with their depth and last hour's
// figures, and one queue with its recent matches and its configuration as
// JSON to edit. The figures refresh themselves as the live console's do;
// the forms sit outside the polled fragments, so a poll never eats what
// an admin is typing. Queue names, room types and player ids are text.

// matchmakingFragments are the polled fragments of these pages.
var matchmakingFragments = []string{"queues-live", "queue-live"}

// queuePath is a queue's page.
func queuePath(name string) string { return "/admin/matchmaking/" + url.PathEscape(name) }

type queuesData struct {
	Queues []queueRow
	// CanManage shows the new queue form (matchmaking:manage).
	CanManage bool
}

type queueRow struct {
	service.QueueView
	Path string
	// Shape says what a match is: "2 teams × 1" or "2–8 players".
	Shape string
	// Live counts the tickets not ended: searching or on their way to a seat.
	Live int
}

// liveTickets counts the tickets of depth that have not ended.
func liveTickets(depth map[tandem.TicketState]int) int {
	n := 0
	for st, c := range depth {
		if !st.Ended() {
			n += c
		}
	}
	return n
}

func queueShape(q tandem.MatchQueue) string {
	if q.Teams > 0 {
		return strconv.Itoa(q.Teams) + " teams × " + strconv.Itoa(q.TeamSize)
	}
	return strconv.Itoa(q.MinPlayers) + "–" + strconv.Itoa(q.MaxPlayers) + " players"
}

func (u *ui) queues(w http.ResponseWriter, r *http.Request) { u.queuesView(w, r, nil, http.StatusOK) }

func (u *ui) queuesView(w http.ResponseWriter, r *http.Request, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	list, err := u.svc.Queues(r.Context(), a)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := queuesData{CanManage: a.Can(tandem.PermMatchmakingManage)}
	for _, v := range list {
		d.Queues = append(d.Queues, queueRow{QueueView: v, Path: queuePath(v.Queue.Name), Shape: queueShape(v.Queue.MatchQueue),
			Live: liveTickets(v.Depth)})
	}
	u.render(w, r, status, "queues", &page{Title: "Matchmaking", Active: "/admin/matchmaking", Form: f, Data: d})
}

// createQueue makes a queue from the new queue form: its name, room type
// and match shape; rules and the rest are edited on its page. A name
// taken already is refused, never replaced.
func (u *ui) createQueue(w http.ResponseWriter, r *http.Request) {
	if !u.parseForm(w, r) {
		return
	}
	q := tandem.MatchQueue{Name: strings.TrimSpace(r.PostForm.Get("name")), RoomType: strings.TrimSpace(r.PostForm.Get("room_type"))}
	var bad []tandem.FieldError
	for _, n := range []struct {
		field string
		dst   *int
	}{{"teams", &q.Teams}, {"team_size", &q.TeamSize}, {"min_players", &q.MinPlayers}, {"max_players", &q.MaxPlayers}} {
		v := strings.TrimSpace(r.PostForm.Get(n.field))
		if v == "" {
			continue
		}
		i, err := strconv.Atoi(v)
		if err != nil {
			bad = append(bad, tandem.FieldError{Field: n.field, Message: "must be a whole number"})
			continue
		}
		*n.dst = i
	}
	show := func(f *Form, status int) { u.queuesView(w, r, f, status) }
	if err := tandem.Invalid(bad); err != nil {
		u.formError(w, r, err, "new-queue", "/admin/matchmaking", show)
		return
	}
	if _, err := u.svc.CreateQueue(r.Context(), web.ActorFrom(r.Context()), q); err != nil {
		u.formError(w, r, err, "new-queue", "/admin/matchmaking", show)
		return
	}
	u.seeOther(w, r, queuePath(q.Name)+"?done=queue-saved")
}

type queueData struct {
	*service.QueueView
	Name string
	Path string
	// Config is the queue's configuration as indented JSON: what the
	// editor shows before anything was submitted.
	Config string
	Shape  string
	// UpdatedAt is the stored queue's, as the editor sends it back: a save
	// over a queue changed meanwhile is refused.
	UpdatedAt string
	// Conflict: the save was refused because the queue changed since its
	// editor was loaded. The page shows the stored configuration next to
	// what was typed, and a second save replaces it knowingly.
	Conflict bool
	// DepthRows are the tickets by state, every state in a ticket's life order.
	DepthRows []depthRow
	// Matches are the recent matches with their room links.
	Matches []matchRow
	// Gone: the queue was deleted while the page polled it.
	Gone bool
	// CanManage shows the editor and the delete button
	// (matchmaking:manage); CanSeePlayers links player ids
	// (players:read).
	CanManage, CanSeePlayers bool
}

type depthRow struct {
	State tandem.TicketState
	Count int
}

type matchRow struct {
	tandem.MatchRecord
	RoomPath string
}

// queueStates are the depth table's rows, in a ticket's life order.
var queueStates = []tandem.TicketState{tandem.TicketSearching, tandem.TicketClaimed, tandem.TicketMatched,
	tandem.TicketSeated, tandem.TicketDone, tandem.TicketCancelled, tandem.TicketExpired}

func (u *ui) queue(w http.ResponseWriter, r *http.Request) {
	u.queueView(w, r, r.PathValue("queue"), nil, http.StatusOK)
}

func (u *ui) queueView(w http.ResponseWriter, r *http.Request, name string, f *Form, status int) {
	a := web.ActorFrom(r.Context())
	v, err := u.svc.Queue(r.Context(), a, name)
	switch code := tandem.ErrorCodeOf(err); {
	case code == tandem.ENotFound && isPoll(r, "queue-live"):
		// Deleted meanwhile: say so in place and stop polling.
		u.render(w, r, pollStop, "queue", &page{Title: "Queue " + name, Active: "/admin/matchmaking",
			Data: queueData{QueueView: &service.QueueView{}, Name: name, Path: queuePath(name), Gone: true}})
		return
	case err != nil:
		u.fail(w, r, err)
		return
	}
	d := queueData{QueueView: v, Name: v.Queue.Name, Path: queuePath(v.Queue.Name), Config: queueConfigText(v.Queue.MatchQueue),
		UpdatedAt: v.Queue.UpdatedAt.UTC().Format(time.RFC3339Nano), Conflict: f != nil && f.Key == "config" && status == http.StatusConflict,
		Shape: queueShape(v.Queue.MatchQueue), CanManage: a.Can(tandem.PermMatchmakingManage), CanSeePlayers: a.Can(tandem.PermPlayersRead)}
	for _, st := range queueStates {
		d.DepthRows = append(d.DepthRows, depthRow{State: st, Count: v.Depth[st]})
	}
	for _, m := range v.Recent {
		row := matchRow{MatchRecord: m}
		if m.RoomID != "" {
			row.RoomPath = roomPath(m.RoomID)
		}
		d.Matches = append(d.Matches, row)
	}
	u.render(w, r, status, "queue", &page{Title: "Queue " + v.Queue.Name, Active: "/admin/matchmaking", Form: f, Data: d})
}

// queueConfigText is the editor's text: the configuration without the
// fields the server sets.
func queueConfigText(q tandem.MatchQueue) string {
	q.UpdatedAt = time.Time{}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the template escapes
	enc.SetIndent("", "  ")
	if err := enc.Encode(q); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// saveQueue replaces a queue's configuration with the editor's JSON. The
// name is the page's: a name in the JSON is ignored. The form's
// updated_at is the queue's when the editor was loaded: a queue saved by
// someone else since is not overwritten unseen.
func (u *ui) saveQueue(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("queue")
	if !u.parseForm(w, r) {
		return
	}
	show := func(f *Form, status int) { u.queueView(w, r, name, f, status) }
	q, err := parseQueueConfig(r.PostForm.Get("config"))
	if err == nil {
		q.Name = name
		q.UpdatedAt, err = parseUpdatedAt(r.PostForm.Get("updated_at"))
	}
	if err == nil {
		_, err = u.svc.PutQueue(r.Context(), web.ActorFrom(r.Context()), q)
	}
	if err != nil {
		u.formError(w, r, err, "config", queuePath(name), show)
		return
	}
	u.seeOther(w, r, queuePath(name)+"?done=queue-saved")
}

// parseQueueConfig reads the editor's JSON. Unknown fields are refused:
// a misspelt one would otherwise be dropped without a word.
func parseQueueConfig(text string) (tandem.MatchQueue, error) {
	var q tandem.MatchQueue
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return q, tandem.Invalid([]tandem.FieldError{{Field: "config", Message: "is not a queue's JSON: " + err.Error()}})
	}
	if dec.More() {
		return q, tandem.Invalid([]tandem.FieldError{{Field: "config", Message: "holds more than one JSON value"}})
	}
	return q, nil
}

// parseUpdatedAt reads the editor's updated_at; "" is the zero time (a
// save that replaces whatever is stored).
func parseUpdatedAt(text string) (time.Time, error) {
	if text == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return t, tandem.Invalid([]tandem.FieldError{{Field: "updated_at", Message: "is not a time (RFC 3339)"}})
	}
	return t, nil
}

func (u *ui) deleteQueue(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("queue")
	if err := u.svc.DeleteQueue(r.Context(), web.ActorFrom(r.Context()), name); err != nil {
		u.formError(w, r, err, "delete", queuePath(name), func(f *Form, status int) { u.queueView(w, r, name, f, status) })
		return
	}
	u.seeOther(w, r, "/admin/matchmaking?done=queue-deleted")
}
