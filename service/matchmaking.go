package service

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem"
	"github.com/tandemhq/tandem/matchmaker"
)

// Matchmaking as the web server sees it: the queues' configurations,
// stored in the database (the source) and mirrored to the bus's queue
// bucket by a leased job (jobs.go), with each queue's depth read from the
// bus and its matches from the events nodes publish.

// QueueView is a queue as the admin pages and API show it.
type QueueView struct {
	Queue tandem.MatchQueueRecord
	// Depth counts the queue's tickets by state, read from the bus;
	// DepthUnavailable says why it could not be read ("" when it was):
	// the rest is shown all the same.
	Depth            map[tandem.TicketState]int
	DepthUnavailable string
	// Over the last hour: how many matches were made and the median and
	// 95th percentile of their waits (0 without matches).
	MatchesLastHour      int
	WaitP50MS, WaitP95MS int64
	// Recent are the queue's latest matches, newest first (Queue only).
	Recent []tandem.MatchRecord
}

// Searching is how many of the queue's tickets wait for a match.
func (v *QueueView) Searching() int { return v.Depth[tandem.TicketSearching] }

const (
	// recentMatches is how many matches a queue's page lists.
	recentMatches = 50
	// statsWindow is what the matches and wait figures cover.
	statsWindow = time.Hour
	// depthTimeout bounds a page's read of the ticket bucket: a bus slow
	// to answer shows the depth as unavailable, not a page that hangs.
	depthTimeout = 2 * time.Second
)

// PutQueue creates or replaces a queue's configuration (matchmaking:manage)
// and wakes the queue mirror, which puts it on the bus. The name is the
// one q carries. A non-zero q.UpdatedAt is the stored queue's as the
// editor loaded it: when the stored one differs (another editor saved in
// between, or deleted it) the put is EConflict, so that no edit is lost
// unseen; a zero one replaces whatever is stored. The stored queue's
// UpdatedAt is now.
func (s *Service) PutQueue(ctx context.Context, a *Actor, q tandem.MatchQueue) (*tandem.MatchQueueRecord, error) {
	return s.putQueue(ctx, a, q, false)
}

// CreateQueue is PutQueue for a queue that must not exist yet: EConflict
// when the name is taken.
func (s *Service) CreateQueue(ctx context.Context, a *Actor, q tandem.MatchQueue) (*tandem.MatchQueueRecord, error) {
	return s.putQueue(ctx, a, q, true)
}

func (s *Service) putQueue(ctx context.Context, a *Actor, q tandem.MatchQueue, create bool) (*tandem.MatchQueueRecord, error) {
	var out *tandem.MatchQueueRecord
	o := op{action: "match_queue.put", perm: tandem.PermMatchmakingManage, targetType: "match_queue", targetID: q.Name}
	err := s.update(ctx, a, o, func(tx tandem.Tx, rec *tandem.AuditRecord) error {
		if err := matchmaker.ValidateQueue(q); err != nil {
			return err
		}
		before, err := tx.MatchQueue(ctx, q.Name)
		switch {
		case err == nil && create:
			return tandem.Errorf(tandem.EConflict, "queue %q already exists", q.Name)
		case err == nil && !q.UpdatedAt.IsZero() && !q.UpdatedAt.Equal(before.UpdatedAt):
			return tandem.Errorf(tandem.EConflict, "the queue changed since it was loaded")
		case err == nil:
			rec.Before = auditJSON(before.MatchQueue)
		case tandem.ErrorCodeOf(err) != tandem.ENotFound:
			return err
		case !q.UpdatedAt.IsZero():
			return tandem.Errorf(tandem.EConflict, "the queue changed since it was loaded: it was deleted")
		}
		q.UpdatedAt = s.now()
		r := &tandem.MatchQueueRecord{MatchQueue: q}
		if a != nil {
			r.UpdatedBy = a.Name
		}
		if err := tx.PutMatchQueue(ctx, r); err != nil {
			return err
		}
		rec.After = auditJSON(r.MatchQueue)
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.wakeJob(ctx, jobQueues)
	return out, nil
}

// DeleteQueue removes a queue (matchmaking:manage); ENotFound when there
// is none. The queue mirror takes it off the bus, so nodes stop matching
// it, and cancels its live tickets (reason queue_deleted).
func (s *Service) DeleteQueue(ctx context.Context, a *Actor, name string) error {
	o := op{action: "match_queue.delete", perm: tandem.PermMatchmakingManage, targetType: "match_queue", targetID: name}
	err := s.update(ctx, a, o, func(tx tandem.Tx, rec *tandem.AuditRecord) error {
		before, err := tx.MatchQueue(ctx, name)
		if err != nil {
			return err
		}
		rec.Before = auditJSON(before.MatchQueue)
		return tx.DeleteMatchQueue(ctx, name)
	})
	if err != nil {
		return err
	}
	s.wakeJob(ctx, jobQueues)
	return nil
}

// Queues lists every queue with its depth and last hour's figures, by
// name (rooms:read). The depths come from one listing of the ticket
// bucket for every queue: a poll of the page reads the bucket once.
func (s *Service) Queues(ctx context.Context, a *Actor) ([]QueueView, error) {
	var out []QueueView
	since := s.now().Add(-statsWindow)
	err := s.view(ctx, a, op{action: "match_queue.list", perm: tandem.PermRoomsRead}, func(tx tandem.Tx) error {
		out = nil
		queues, err := tx.MatchQueues(ctx)
		if err != nil {
			return err
		}
		for _, q := range queues {
			v := QueueView{Queue: *q}
			if err := matchStats(ctx, tx, &v, since); err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	depths, why := s.queueDepths(ctx, "")
	for i := range out {
		out[i].DepthUnavailable = why
		if why == "" {
			out[i].Depth = depths[out[i].Queue.Name]
		}
	}
	return out, nil
}

// Queue returns one queue with its depth, last hour's figures and recent
// matches (rooms:read); ENotFound when there is no such queue.
func (s *Service) Queue(ctx context.Context, a *Actor, name string) (*QueueView, error) {
	var v QueueView
	since := s.now().Add(-statsWindow)
	o := op{action: "match_queue.read", perm: tandem.PermRoomsRead, targetType: "match_queue", targetID: name}
	err := s.view(ctx, a, o, func(tx tandem.Tx) error {
		q, err := tx.MatchQueue(ctx, name)
		if err != nil {
			return err
		}
		v = QueueView{Queue: *q}
		if err := matchStats(ctx, tx, &v, since); err != nil {
			return err
		}
		v.Recent, err = tx.RecentMatches(ctx, name, recentMatches)
		return err
	})
	if err != nil {
		return nil, err
	}
	depths, why := s.queueDepths(ctx, name)
	v.Depth, v.DepthUnavailable = depths[name], why
	return &v, nil
}

// matchStats fills v's figures over the matches made since.
func matchStats(ctx context.Context, tx tandem.Tx, v *QueueView, since time.Time) error {
	waits, err := tx.MatchWaits(ctx, v.Queue.Name, since)
	if err != nil {
		return err
	}
	v.MatchesLastHour = len(waits)
	v.WaitP50MS, v.WaitP95MS = percentile(waits, 50), percentile(waits, 95)
	return nil
}

// percentile is the nearest-rank p-th percentile of values (0 when there
// are none): the smallest value at least p% of them do not exceed.
func percentile(values []int64, p int) int64 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(values))
	rank := int(math.Ceil(float64(p) / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// queueDepths counts the tickets of queue ("" for every queue) by queue
// and state. A bus that cannot be read is not a failure of the page: why
// says what to show instead.
func (s *Service) queueDepths(ctx context.Context, queue string) (depths map[string]map[tandem.TicketState]int, why string) {
	if s.cfg.Matchmaking == nil {
		return nil, "this server runs without a cluster"
	}
	rctx, cancel := context.WithTimeout(ctx, depthTimeout)
	defer cancel()
	tickets, err := s.cfg.Matchmaking.Tickets(rctx, queue)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("matchmaking tickets unreadable", "queue", queue, "err", err)
		}
		return nil, "the cluster bus is not answering"
	}
	depths = map[string]map[tandem.TicketState]int{}
	for _, t := range tickets {
		if depths[t.Queue] == nil {
			depths[t.Queue] = map[tandem.TicketState]int{}
		}
		depths[t.Queue][t.State]++
	}
	return depths, ""
}

// matchRecords turns the batch's EventMatch events into the matches they
// report. Attrs: queue, match, node (the room's: the matcher that
// publishes the event may run elsewhere), players (players by ',' and
// teams by '|'), wait_ms, backfill. An event naming no match is stored
// under its own id, which a redelivery keeps.
func matchRecords(events []tandem.Event) []tandem.MatchRecord {
	var out []tandem.MatchRecord
	for _, e := range events {
		if e.Kind != tandem.EventMatch {
			continue
		}
		m := tandem.MatchRecord{ID: e.Attrs["match"], Queue: e.Attrs["queue"], RoomID: e.RoomID, Node: cmp.Or(e.Attrs["node"], e.Node),
			Teams: parseTeams(e.Attrs["players"], e.Attrs["teams"]), At: e.At}
		if m.ID == "" {
			m.ID = e.ID
		}
		m.WaitMS, _ = strconv.ParseInt(e.Attrs["wait_ms"], 10, 64)
		m.Backfill, _ = strconv.ParseBool(e.Attrs["backfill"])
		out = append(out, m)
	}
	return out
}

// parseTeams reads a match's players: teams separated by '|', players by
// ','. A list without '|' is split by sizes (team sizes, comma-separated)
// when given, else it is one team.
func parseTeams(players, sizes string) [][]string {
	if players == "" {
		return nil
	}
	if !strings.Contains(players, "|") && sizes != "" {
		if teams := splitBySizes(strings.Split(players, ","), sizes); teams != nil {
			return teams
		}
	}
	var teams [][]string
	for _, team := range strings.Split(players, "|") {
		if team == "" {
			teams = append(teams, []string{})
			continue
		}
		teams = append(teams, strings.Split(team, ","))
	}
	return teams
}

// splitBySizes cuts ids into teams of the sizes listed; nil when the
// sizes do not add up to the ids.
func splitBySizes(ids []string, sizes string) [][]string {
	var teams [][]string
	rest := ids
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n > len(rest) {
			return nil
		}
		teams, rest = append(teams, rest[:n:n]), rest[n:]
	}
	if len(rest) != 0 {
		return nil
	}
	return teams
}

// queueJSON is how the queue mirror compares a queue in the bucket with
// the table's: their JSON, which is what the bucket holds.
func queueJSON(q tandem.MatchQueue) string {
	b, _ := json.Marshal(q)
	return string(b)
}
