package observe

import "github.com/prometheus/client_golang/prometheus"

// Matchmaking holds the metrics of a node's matchmaking: its tickets and
// the matchers it runs.
type Matchmaking struct {
	QueueDepth          *prometheus.GaugeVec     // queue: searching tickets, as the queue's matcher last saw them
	TimeToMatch         *prometheus.HistogramVec // queue: a ticket's wait from creation to its match
	Matches             *prometheus.CounterVec   // queue: committed matches
	ReservationsExpired *prometheus.CounterVec   // queue: matched players who did not take their seat in time
	MatcherTick         *prometheus.HistogramVec // queue: how long a matcher pass takes
	Tickets             *prometheus.CounterVec   // queue: tickets accepted by this node
}

// NewMatchmaking creates the matchmaking metrics and registers them with
// reg.
func NewMatchmaking(reg prometheus.Registerer) *Matchmaking {
	const ns = "tandem_mm_"
	q := []string{"queue"}
	m := &Matchmaking{
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "queue_depth",
			Help: "Tickets searching in a queue, as its matcher (on the node holding the queue's lease) last saw them."}, q),
		TimeToMatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "time_to_match_seconds",
			Help: "How long tickets waited from creation to their match.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, q),
		Matches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "matches_total",
			Help: "Matches committed (every ticket claimed, the room and seats reserved)."}, q),
		ReservationsExpired: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "reservations_expired_total",
			Help: "Matched players who did not take their seat before it expired."}, q),
		MatcherTick: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "matcher_tick_seconds",
			Help: "Time a matcher pass over a queue takes (matching and committing).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, q),
		Tickets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "tickets_total",
			Help: "Tickets accepted by this node."}, q),
	}
	reg.MustRegister(m.QueueDepth, m.TimeToMatch, m.Matches, m.ReservationsExpired, m.MatcherTick, m.Tickets)
	return m
}
