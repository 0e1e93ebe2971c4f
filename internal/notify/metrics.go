package notify

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	deliveries *prometheus.CounterVec
	pending    *prometheus.Desc
	outbox     *Outbox
}

func newMetrics(o *Outbox) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploadsets_notify_deliveries_total",
			Help: "Attempts to notify an app, by outcome: delivered, retried (failed, tried again later) or dropped (failed past max_age).",
		}, []string{"notify", "result"}),
		pending: prometheus.NewDesc("uploadsets_notify_pending",
			"Events in the outbox not yet delivered to an app.", []string{"notify"}, nil),
		outbox: o,
	}
	// Present from the start, so that an alert on rate(...{result="dropped"}) has a
	// series to work on before the first drop.
	for _, t := range o.targets {
		for _, r := range []string{"delivered", "retried", "dropped"} {
			m.deliveries.WithLabelValues(t.Name, r)
		}
	}
	return m
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.deliveries.Describe(ch)
	ch <- m.pending
}

// Collect reads the pending counts when scraped rather than keeping a gauge in step.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.deliveries.Collect(ch)
	for _, t := range m.outbox.targets {
		ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(m.outbox.q.pending(t)), t.Name)
	}
}

// Collector is the outbox's metrics, for the server's registry.
func (o *Outbox) Collector() prometheus.Collector { return o.metrics }
