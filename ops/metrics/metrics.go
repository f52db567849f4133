// Package metrics exposes wharf's Prometheus metrics. It implements core.Observer for the
// facts sites report (connections, logins, operations, session ends, strikes, bans), wraps
// event dispatchers to time script runs, and reads live counts (sessions, transfers) from the
// sites at scrape time.
//
// Everything is registered on the Metrics' own registry, never on the global default one, so
// several servers (tests) can run in one process.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wharf-project/wharf/core"
)

// Options configure Metrics.
type Options struct {
	// PerUser adds a "user" label to the login, byte and operation series (metrics.per_user).
	PerUser bool
	// Version is reported by wharf_build_info.
	Version string
	// Sites returns the live sites for the gauges read at scrape time (sessions, transfers);
	// nil reports none.
	Sites func() []*core.Site
}

// Metrics holds wharf's collectors and their registry.
type Metrics struct {
	reg     *prometheus.Registry
	perUser bool

	connections   *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	sessions      *prometheus.CounterVec
	sessionLength *prometheus.HistogramVec
	logins        *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	operations    *prometheus.CounterVec
	transferTime  *prometheus.HistogramVec
	strikes       *prometheus.CounterVec
	bans          *prometheus.CounterVec
	scriptRuns    *prometheus.CounterVec
	scriptErrors  *prometheus.CounterVec
	scriptTime    *prometheus.HistogramVec
	reloads       *prometheus.CounterVec
	reloadTime    prometheus.Gauge
	ext           *extMetrics // asynchronous handlers and mail (extensions.go)
}

var _ core.Observer = (*Metrics)(nil)

// New builds the collectors and registers them, with the Go runtime and process collectors,
// on a new registry.
func New(opts Options) *Metrics {
	userLabels := func(ls ...string) []string {
		if opts.PerUser {
			return append(ls, "user")
		}
		return ls
	}
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		perUser: opts.PerUser,
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_connections_total",
			Help: "Connections accepted (result ok) or refused (result refused or limit), by site and protocol.",
		}, []string{"site", "protocol", "result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_connection_refusals_total",
			Help: "Connections refused, by site, protocol and reason (block list, ban, limits, script).",
		}, []string{"site", "protocol", "reason"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_sessions_total",
			Help: "Sessions ended, by site and protocol (as the session reported it at its end: FTPES after AUTH TLS, SCP for scp).",
		}, []string{"site", "protocol"}),
		sessionLength: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_session_duration_seconds",
			Help:    "Length of ended sessions, by site and protocol.",
			Buckets: []float64{1, 5, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600},
		}, []string{"site", "protocol"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_logins_total",
			Help: "Authentication attempts, by site, protocol, method and result (ok or the error kind).",
		}, userLabels("site", "protocol", "method", "result")),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_transfer_bytes_total",
			Help: "Bytes transferred, by site, protocol and direction (up = upload, down = download), counted when a transfer ends.",
		}, userLabels("site", "protocol", "direction")),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_operations_total",
			Help: "File operations, by site, protocol, operation and result (ok or the error kind).",
		}, userLabels("site", "protocol", "operation", "result")),
		transferTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_transfer_duration_seconds",
			Help:    "Duration of uploads and downloads from open to close, by site, protocol, direction and result.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"site", "protocol", "direction", "result"}),
		strikes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_protector_strikes_total",
			Help: "Strikes counted by the protector (failed logins, idle scanners, refused operations), by site.",
		}, []string{"site"}),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_protector_bans_total",
			Help: "Addresses banned, by site.",
		}, []string{"site"}),
		scriptRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_script_runs_total",
			Help: "Events dispatched to event scripts, by site and event.",
		}, []string{"site", "event"}),
		scriptErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_script_errors_total",
			Help: "Event script runs that failed or timed out, by site and event.",
		}, []string{"site", "event"}),
		scriptTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_script_duration_seconds",
			Help:    "Time spent running an event's scripts (all handlers of the event), by site and event.",
			Buckets: []float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5},
		}, []string{"site", "event"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_config_reloads_total",
			Help: "Configuration reloads, by result (ok or error).",
		}, []string{"result"}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded (start or last successful reload), as a Unix time.",
		}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "wharf_build_info",
		Help:        "Always 1; the version label says which wharf is running.",
		ConstLabels: prometheus.Labels{"version": opts.Version},
	})
	info.Set(1)
	m.reloadTime.SetToCurrentTime()
	m.ext = newExtMetrics()
	m.reg.MustRegister(m.ext.collectors()...)
	m.reg.MustRegister(m.connections, m.refusals, m.sessions, m.sessionLength, m.logins, m.bytes,
		m.operations, m.transferTime, m.strikes, m.bans, m.scriptRuns, m.scriptErrors, m.scriptTime,
		m.reloads, m.reloadTime, info, &liveCollector{sites: opts.Sites},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry the metrics are registered on (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe implements core.Observer. It only updates in-memory counters, so it never blocks.
func (m *Metrics) Observe(f *core.Fact) {
	proto := f.Protocol
	switch f.Kind {
	case core.FactConnect:
		result := "ok"
		if f.Err != nil {
			result = "refused"
			if errors.Is(f.Err, core.ErrLimit) {
				result = "limit"
			}
			m.refusals.WithLabelValues(f.Site, proto, f.Reason).Inc()
		}
		m.connections.WithLabelValues(f.Site, proto, result).Inc()
	case core.FactLogin:
		m.logins.WithLabelValues(m.user(f, f.Site, proto, f.Method, f.Result())...).Inc()
	case core.FactOperation:
		if f.Actor != "" {
			return // the operations of event scripts are audited, not counted as the clients'
		}
		result := f.Result()
		m.operations.WithLabelValues(m.user(f, f.Site, proto, f.Op, result)...).Inc()
		dir := ""
		switch f.Op {
		case core.OpUpload:
			dir = "up"
		case core.OpDownload:
			dir = "down"
		}
		if dir != "" {
			// Failed transfers moved bytes too: they count, like the time they took.
			m.bytes.WithLabelValues(m.user(f, f.Site, proto, dir)...).Add(float64(max(f.Bytes, 0)))
			m.transferTime.WithLabelValues(f.Site, proto, dir, result).Observe(f.Duration.Seconds())
		}
	case core.FactSessionEnd:
		m.sessions.WithLabelValues(f.Site, proto).Inc()
		m.sessionLength.WithLabelValues(f.Site, proto).Observe(f.Duration.Seconds())
	case core.FactStrike:
		m.strikes.WithLabelValues(f.Site).Inc()
	case core.FactBan:
		m.bans.WithLabelValues(f.Site).Inc()
	}
}

// user appends the fact's user to labels when per-user metrics are on.
func (m *Metrics) user(f *core.Fact, labels ...string) []string {
	if m.perUser {
		return append(labels, f.User)
	}
	return labels
}

// Reloaded records a configuration reload; err nil means it succeeded.
func (m *Metrics) Reloaded(err error) {
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.reloadTime.SetToCurrentTime()
}

// ScriptError counts a failed or timed-out script run of an event. The scripting engine
// reports failures through its Options.Observe callback (an Action named "error"); whoever
// builds the engine can forward those here.
func (m *Metrics) ScriptError(site, event string) {
	m.scriptErrors.WithLabelValues(site, event).Inc()
}

// WrapDispatcher returns a dispatcher that counts and times the script runs of d by event.
// Handles is passed through untouched: the core fires only events that have handlers, so
// every Fire is one run of an event's scripts.
func (m *Metrics) WrapDispatcher(site string, d core.Dispatcher) core.Dispatcher {
	return &timedDispatcher{m: m, site: site, next: d}
}

type timedDispatcher struct {
	m    *Metrics
	site string
	next core.Dispatcher
	// byEvent caches each event's counter and histogram (core.EventName → *eventMetrics):
	// looking them up by label values hashes the labels on every run.
	byEvent sync.Map
}

type eventMetrics struct {
	runs prometheus.Counter
	time prometheus.Observer
}

func (t *timedDispatcher) metrics(name core.EventName) *eventMetrics {
	if em, ok := t.byEvent.Load(name); ok {
		return em.(*eventMetrics)
	}
	em := &eventMetrics{
		runs: t.m.scriptRuns.WithLabelValues(t.site, string(name)),
		time: t.m.scriptTime.WithLabelValues(t.site, string(name)),
	}
	actual, _ := t.byEvent.LoadOrStore(name, em)
	return actual.(*eventMetrics)
}

func (t *timedDispatcher) Handles(name core.EventName, user *core.User) bool {
	return t.next.Handles(name, user)
}

func (t *timedDispatcher) Fire(ctx context.Context, ev *core.Event) {
	start := time.Now()
	t.next.Fire(ctx, ev)
	em := t.metrics(ev.Name)
	em.runs.Inc()
	em.time.Observe(time.Since(start).Seconds())
}

// liveCollector reports the sites' live sessions and transfers when scraped, so the gauges
// can never drift from the registry of sessions the sites keep.
type liveCollector struct {
	sites func() []*core.Site
}

var (
	sessionsDesc = prometheus.NewDesc("wharf_sessions_active",
		"Live sessions, by site and protocol.", []string{"site", "protocol"}, nil)
	authDesc = prometheus.NewDesc("wharf_sessions_authenticated",
		"Live sessions that have logged in, by site.", []string{"site"}, nil)
	transfersDesc = prometheus.NewDesc("wharf_transfers_active",
		"Uploads and downloads in progress, by site.", []string{"site"}, nil)
	bansDesc = prometheus.NewDesc("wharf_protector_bans_active",
		"Bans in force (addresses and IPv6 prefixes), by site.", []string{"site"}, nil)
)

// listenerProtocols are the protocol labels the sessions of each listener protocol report.
var listenerProtocols = map[string][]string{
	"sftp": {core.ProtoSFTP, core.ProtoSCP},
	"ftp":  {core.ProtoFTP, core.ProtoFTPES},
	"ftps": {core.ProtoFTPS},
}

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sessionsDesc
	ch <- authDesc
	ch <- transfersDesc
	ch <- bansDesc
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	if c.sites == nil {
		return
	}
	for _, s := range c.sites() {
		// Every protocol the site's listeners serve is reported, 0 when idle: a series that
		// disappears reads as "no data" in dashboards and alerts, not as zero.
		byProto := map[string]int{}
		for _, l := range s.Config().Listeners {
			for _, p := range listenerProtocols[l.Protocol] {
				byProto[p] += 0
			}
		}
		auth := 0
		for _, sess := range s.Sessions() {
			byProto[sess.Protocol()]++
			if sess.User() != nil {
				auth++
			}
		}
		for p, n := range byProto {
			ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n), s.Name(), p)
		}
		ch <- prometheus.MustNewConstMetric(authDesc, prometheus.GaugeValue, float64(auth), s.Name())
		ch <- prometheus.MustNewConstMetric(transfersDesc, prometheus.GaugeValue, float64(s.ActiveTransfers()), s.Name())
		ch <- prometheus.MustNewConstMetric(bansDesc, prometheus.GaugeValue, float64(s.ActiveBans()), s.Name())
	}
}
