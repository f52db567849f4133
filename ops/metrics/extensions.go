package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The figures of scripts' extensions: asynchronous handlers (scripting.AsyncMetrics) and the
// mail spool (mailq.Observer). Metrics implements both interfaces with the methods below.

type extMetrics struct {
	asyncRuns    *prometheus.CounterVec
	asyncDropped *prometheus.CounterVec
	asyncTime    *prometheus.HistogramVec
	mailQueued   *prometheus.CounterVec
	mailAttempts *prometheus.CounterVec
	// clusterErrors counts the cluster store's failures by operation.
	clusterErrors *prometheus.CounterVec

	mu     sync.Mutex
	queues map[string]func() int // site → its asynchronous queue's depth
	spool  func() int            // messages in the mail spool
}

var (
	asyncQueueDesc = prometheus.NewDesc("wharf_script_async_queue_depth",
		"Asynchronous handler runs waiting for a worker, by site.", []string{"site"}, nil)
	mailSpoolDesc = prometheus.NewDesc("wharf_mail_spool_messages",
		"Messages in the mail spool, waiting for delivery or a retry.", nil, nil)
)

func newExtMetrics() *extMetrics {
	return &extMetrics{
		asyncRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_script_async_runs_total",
			Help: "Asynchronous event handler runs, by site, event and result (ok, or failed: an error or a timeout).",
		}, []string{"site", "event", "result"}),
		asyncDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_script_async_dropped_total",
			Help: "Asynchronous event handler runs dropped (full queue, shutdown), by site and event.",
		}, []string{"site", "event"}),
		asyncTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_script_async_duration_seconds",
			Help:    "Time one asynchronous event handler ran, by site and event.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30},
		}, []string{"site", "event"}),
		mailQueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_mail_queued_total",
			Help: "Messages scripts queued with SendMail, by site.",
		}, []string{"site"}),
		mailAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_mail_deliveries_total",
			Help: "Delivery attempts of queued mail, by site and result: sent, deferred (retried later) or failed (given up).",
		}, []string{"site", "result"}),
		clusterErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_cluster_store_errors_total",
			Help: "Calls to the cluster store that failed (unreachable, timed out or an error), by operation.",
		}, []string{"operation"}),
		queues: map[string]func() int{},
	}
}

func (x *extMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{x.asyncRuns, x.asyncDropped, x.asyncTime, x.mailQueued, x.mailAttempts, x.clusterErrors, x}
}

// Describe and Collect report the gauges read when scraped.
func (x *extMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- asyncQueueDesc
	ch <- mailSpoolDesc
}

func (x *extMetrics) Collect(ch chan<- prometheus.Metric) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for site, depth := range x.queues {
		ch <- prometheus.MustNewConstMetric(asyncQueueDesc, prometheus.GaugeValue, float64(depth()), site)
	}
	if x.spool != nil {
		ch <- prometheus.MustNewConstMetric(mailSpoolDesc, prometheus.GaugeValue, float64(x.spool()))
	}
}

// AsyncRun counts and times one asynchronous handler run (scripting.AsyncMetrics).
func (m *Metrics) AsyncRun(site, event string, d time.Duration, failed bool) {
	result := "ok"
	if failed {
		result = "failed"
	}
	m.ext.asyncRuns.WithLabelValues(site, event, result).Inc()
	m.ext.asyncTime.WithLabelValues(site, event).Observe(d.Seconds())
}

// AsyncDropped counts an asynchronous run that was not made (scripting.AsyncMetrics).
func (m *Metrics) AsyncDropped(site, event string) {
	m.ext.asyncDropped.WithLabelValues(site, event).Inc()
}

// WatchAsyncQueue reports the depth of a site's asynchronous queue when scraped.
func (m *Metrics) WatchAsyncQueue(site string, depth func() int) {
	m.ext.mu.Lock()
	m.ext.queues[site] = depth
	m.ext.mu.Unlock()
}

// MailQueued counts a message queued by a script (mailq.Observer).
func (m *Metrics) MailQueued(site string) { m.ext.mailQueued.WithLabelValues(site).Inc() }

// MailAttempt counts a delivery attempt by result (mailq.Observer).
func (m *Metrics) MailAttempt(site, result string) {
	m.ext.mailAttempts.WithLabelValues(site, result).Inc()
}

// WatchMailSpool reports the number of messages in the mail spool when scraped.
func (m *Metrics) WatchMailSpool(count func() int) {
	m.ext.mu.Lock()
	m.ext.spool = count
	m.ext.mu.Unlock()
}

// The cluster store (the cluster: section): whether it answers and how often it did not.

// WatchClusterStore reports wharf_cluster_store_up (1 while the store answers) when scraped.
// Called once, when the server is a node of a cluster.
func (m *Metrics) WatchClusterStore(up func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wharf_cluster_store_up",
		Help: "1 while the cluster store (PostgreSQL) answers, 0 while the node serves without it (cluster.on_store_down).",
	}, func() float64 {
		if up() {
			return 1
		}
		return 0
	}))
}

// ClusterStoreError counts a call to the cluster store that failed (it did not answer, or
// answered with an error), by operation.
func (m *Metrics) ClusterStoreError(op string) {
	m.ext.clusterErrors.WithLabelValues(op).Inc()
}
