// Package observe owns Tandem's metrics, logging setup and, later, tracing
// and alert evaluation. Metric names follow shared/DESIGN.md
// (tandem_realtime_*, tandem_web_*, tandem_bus_*) and never carry player or
// room ids as labels.
package observe

import (
	"io"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewLogger returns a JSON logger at the named level (debug, info, warn,
// error).
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// NewRegistry returns a Prometheus registry with the Go and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Realtime holds the metrics of a realtime node.
type Realtime struct {
	Connections     prometheus.Gauge
	HeldSeats       prometheus.Gauge
	Rooms           *prometheus.GaugeVec // by room type
	FramesIn        prometheus.Counter
	FramesOut       prometheus.Counter
	BytesIn         prometheus.Counter
	BytesOut        prometheus.Counter
	SendQueueDrops  prometheus.Counter
	SlowConsumers   prometheus.Counter
	Resumes         *prometheus.CounterVec // by outcome: replayed, snapshot, expired
	RTT             prometheus.Histogram
	TickDuration    prometheus.Histogram
	TickOverruns    prometheus.Counter
	LimitViolations *prometheus.CounterVec // by kind
	Closes          *prometheus.CounterVec // by close code name
}

// Resume outcomes.
const (
	ResumeReplayed = "replayed"
	ResumeSnapshot = "snapshot"
	ResumeExpired  = "expired"
)

// NewRealtime creates the realtime metrics and registers them with reg.
func NewRealtime(reg prometheus.Registerer) *Realtime {
	const ns = "tandem_realtime_"
	m := &Realtime{
		Connections:     prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "connections", Help: "Open WebSocket connections."}),
		HeldSeats:       prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "held_sessions", Help: "Sessions held after a disconnect, waiting for a resume."}),
		Rooms:           prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "rooms", Help: "Running rooms by type."}, []string{"type"}),
		FramesIn:        prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "frames_received_total", Help: "Frames read from clients."}),
		FramesOut:       prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "frames_sent_total", Help: "Frames written to clients."}),
		BytesIn:         prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "bytes_received_total", Help: "Bytes read from clients."}),
		BytesOut:        prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "bytes_sent_total", Help: "Bytes written to clients."}),
		SendQueueDrops:  prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "send_queue_drops_total", Help: "Frames dropped because a send queue was full."}),
		SlowConsumers:   prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "slow_consumer_disconnects_total", Help: "Connections closed because the client did not read fast enough."}),
		Resumes:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "resumes_total", Help: "Resume attempts by outcome (replayed, snapshot, expired)."}, []string{"outcome"}),
		RTT:             prometheus.NewHistogram(prometheus.HistogramOpts{Name: ns + "rtt_seconds", Help: "Round-trip time measured by ping/pong.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		TickDuration:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: ns + "tick_duration_seconds", Help: "Time a room tick takes.", Buckets: prometheus.ExponentialBuckets(0.00001, 2, 16)}),
		TickOverruns:    prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "tick_overruns_total", Help: "Ticks that took longer than the tick interval."}),
		LimitViolations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "limit_violations_total", Help: "Limit violations by kind."}, []string{"kind"}),
		Closes:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "closes_total", Help: "Connections closed by the server, by close code."}, []string{"code"}),
	}
	for _, o := range []string{ResumeReplayed, ResumeSnapshot, ResumeExpired} {
		m.Resumes.WithLabelValues(o)
	}
	reg.MustRegister(m.Connections, m.HeldSeats, m.Rooms, m.FramesIn, m.FramesOut, m.BytesIn, m.BytesOut,
		m.SendQueueDrops, m.SlowConsumers, m.Resumes, m.RTT, m.TickDuration, m.TickOverruns, m.LimitViolations, m.Closes)
	return m
}
