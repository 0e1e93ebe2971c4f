package server

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/uploadsets/uploadsets/hooks"
)

// metrics is this server's own registry (no globals): tusd's counters of every set,
// read at scrape time under one collector with a set label, and the outcomes the
// hooks report.
type metrics struct {
	registry *prometheus.Registry
	outcomes *prometheus.CounterVec
	// errors are counted here, not taken from tusd: a cut request (a hand-off, a
	// shutdown) answers differently from what tusd counted, and is no error.
	errors *prometheus.CounterVec
	// active counts requests receiving an upload's bytes right now.
	active   *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	size     *prometheus.HistogramVec
	reloads  *prometheus.CounterVec
	images   *prometheus.HistogramVec
	sets     atomic.Pointer[[]*uploadSet] // swapped by a reload
}

var (
	descRequests = prometheus.NewDesc("uploadsets_requests_total", "tus requests received, by method.", []string{"set", "method"}, nil)
	descBytes    = prometheus.NewDesc("uploadsets_bytes_received_total", "Upload bytes written to storage.", []string{"set"}, nil)
	descCreated  = prometheus.NewDesc("uploadsets_uploads_created_total", "Uploads created.", []string{"set"}, nil)
	descFinished = prometheus.NewDesc("uploadsets_uploads_finished_total", "Uploads whose bytes all arrived and that passed the finish checks.", []string{"set"}, nil)
	descTerm     = prometheus.NewDesc("uploadsets_uploads_terminated_total", "Uploads terminated by their client.", []string{"set"}, nil)
)

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploadsets_upload_outcomes_total",
			Help: "What became of uploads: refused at creation, placed, or rejected after completion.",
		}, []string{"set", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "uploadsets_errors_total",
			Help: "Error responses to tus requests, by status and code; cut requests (a hand-off, a shutdown) are not counted.",
		}, []string{"set", "status", "code"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "uploadsets_uploads_active",
			Help: "Uploads whose bytes are being received right now (POST and PATCH requests in progress).",
		}, []string{"set"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "uploadsets_upload_duration_seconds",
			Help:    "From an upload's creation to its placement.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}, []string{"set"}),
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "uploadsets_upload_size_bytes",
			Help:    "Sizes of placed uploads.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 12), // 1 KiB to 4 GiB
		}, []string{"set"}),
	}
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "uploadsets_config_reloads_total",
		Help: "Config reloads (SIGHUP), by result: ok, or failed (the running config is kept).",
	}, []string{"result"})
	m.images = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "uploadsets_image_seconds",
		Help:    "Image processing of an upload (waiting for a worker included): decode, orient, fit, strip, encode, thumbnails.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"set"})
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	m.registry.MustRegister(m.outcomes, m.errors, m.active, m.duration, m.size, m.reloads, m.images,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) register(sets []*uploadSet) {
	m.registry.MustRegister(m)
	m.setSets(sets)
}

// setSets makes the collector report sets, the tus counters of which live in their
// handlers.
func (m *metrics) setSets(sets []*uploadSet) {
	m.sets.Store(&sets)
	for _, us := range sets {
		for _, o := range []hooks.Event{hooks.EventRefused, hooks.EventPlaced, hooks.EventRejected} {
			m.outcomes.WithLabelValues(us.set.Name, string(o))
		}
		m.active.WithLabelValues(us.set.Name)
	}
}

func (m *metrics) event(set string, o hooks.Outcome) {
	m.outcomes.WithLabelValues(set, string(o.Event)).Inc()
	if o.Event == hooks.EventPlaced {
		m.duration.WithLabelValues(set).Observe(o.Took.Seconds())
		m.size.WithLabelValues(set).Observe(float64(o.Size))
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descBytes, descCreated, descFinished, descTerm} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v *uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(atomic.LoadUint64(v)), labels...)
	}
	for _, us := range *m.sets.Load() {
		tm, name := us.tus.Metrics, us.set.Name
		for method, v := range tm.RequestsTotal {
			counter(descRequests, v, name, method)
		}
		counter(descBytes, tm.BytesReceived, name)
		counter(descCreated, tm.UploadsCreated, name)
		counter(descFinished, tm.UploadsFinished, name)
		counter(descTerm, tm.UploadsTerminated, name)
	}
}
