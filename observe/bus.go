package observe

import "github.com/prometheus/client_golang/prometheus"

// Bus holds the metrics of a process's use of the cluster bus.
type Bus struct {
	EventsDropped   prometheus.Counter
	EventsPublished prometheus.Counter
}

// NewBus creates the bus metrics and registers them with reg.
func NewBus(reg prometheus.Registerer) *Bus {
	const ns = "tandem_bus_"
	m := &Bus{
		EventsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_dropped_total",
			Help: "Cluster events dropped before reaching the bus (the node's event buffer was full, or the bus refused them)."}),
		EventsPublished: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_published_total",
			Help: "Cluster events stored in the event stream."}),
	}
	reg.MustRegister(m.EventsDropped, m.EventsPublished)
	return m
}
