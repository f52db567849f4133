package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// value returns the value of the series name{labels}, summing counters and histogram counts
// over the labels not given; found is false when no series matches.
func value(t *testing.T, m *Metrics, name string, labels map[string]string) (v float64, found bool) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, s := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range s.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, want := range labels {
				if have[k] != want {
					continue next
				}
			}
			found = true
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v += s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v += s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				v += float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return v, found
}

func labelNames(t *testing.T, m *Metrics, name string) []string {
	t.Helper()
	fams, _ := m.Registry().Gather()
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			var out []string
			for _, lp := range f.GetMetric()[0].GetLabel() {
				out = append(out, lp.GetName())
			}
			return out
		}
	}
	return nil
}

func TestObserve(t *testing.T) {
	denied := fmt.Errorf("no: %w", core.ErrDenied)
	tests := []struct {
		name   string
		fact   core.Fact
		metric string
		labels map[string]string
		want   float64
	}{
		{"accepted connection", core.Fact{Kind: core.FactConnect, Site: "s", Protocol: "SFTP"},
			"wharf_connections_total", map[string]string{"site": "s", "protocol": "SFTP", "result": "ok"}, 1},
		{"banned connection", core.Fact{Kind: core.FactConnect, Site: "s", Protocol: "FTP", Reason: "address is banned", Err: core.ErrRefused},
			"wharf_connection_refusals_total", map[string]string{"site": "s", "protocol": "FTP", "reason": "address is banned"}, 1},
		{"connection over a limit", core.Fact{Kind: core.FactConnect, Site: "s", Protocol: "FTP", Reason: "too many", Err: core.ErrLimit},
			"wharf_connections_total", map[string]string{"protocol": "FTP", "result": "limit"}, 1},
		{"login ok", core.Fact{Kind: core.FactLogin, Site: "s", Protocol: "SFTP", Method: "password", User: "alice"},
			"wharf_logins_total", map[string]string{"protocol": "SFTP", "method": "password", "result": "ok"}, 1},
		{"login failed", core.Fact{Kind: core.FactLogin, Site: "s", Protocol: "FTP", Method: "password", Err: denied},
			"wharf_logins_total", map[string]string{"protocol": "FTP", "result": "permission_denied"}, 1},
		{"upload bytes", core.Fact{Kind: core.FactOperation, Site: "s", Protocol: "SFTP", Op: core.OpUpload, Bytes: 1000, Duration: time.Second},
			"wharf_transfer_bytes_total", map[string]string{"protocol": "SFTP", "direction": "up"}, 1000},
		{"download bytes", core.Fact{Kind: core.FactOperation, Site: "s", Protocol: "FTP", Op: core.OpDownload, Bytes: 42},
			"wharf_transfer_bytes_total", map[string]string{"protocol": "FTP", "direction": "down"}, 42},
		{"transfer duration", core.Fact{Kind: core.FactOperation, Site: "s", Protocol: "FTPS", Op: core.OpDownload, Duration: 2 * time.Second},
			"wharf_transfer_duration_seconds", map[string]string{"protocol": "FTPS", "direction": "down", "result": "ok"}, 1},
		{"failed operation", core.Fact{Kind: core.FactOperation, Site: "s", Protocol: "SFTP", Op: core.OpRemove, Err: denied},
			"wharf_operations_total", map[string]string{"operation": "remove", "result": "permission_denied"}, 1},
		{"session end", core.Fact{Kind: core.FactSessionEnd, Site: "s", Protocol: "SCP", Duration: time.Minute},
			"wharf_sessions_total", map[string]string{"site": "s", "protocol": "SCP"}, 1},
		{"session length", core.Fact{Kind: core.FactSessionEnd, Site: "s", Protocol: "FTPES", Duration: time.Minute},
			"wharf_session_duration_seconds", map[string]string{"protocol": "FTPES"}, 1},
		{"strike", core.Fact{Kind: core.FactStrike, Site: "s", Reason: "failed login"},
			"wharf_protector_strikes_total", map[string]string{"site": "s"}, 1},
		{"ban", core.Fact{Kind: core.FactBan, Site: "s", Duration: time.Hour},
			"wharf_protector_bans_total", map[string]string{"site": "s"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{})
			f := tt.fact
			m.Observe(&f)
			if got, _ := value(t, m, tt.metric, tt.labels); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
}

func TestPerUserLabels(t *testing.T) {
	for _, perUser := range []bool{false, true} {
		m := New(Options{PerUser: perUser})
		for _, f := range []core.Fact{
			{Kind: core.FactLogin, Site: "s", Protocol: "SFTP", Method: "password", User: "alice"},
			{Kind: core.FactOperation, Site: "s", Protocol: "SFTP", Op: core.OpUpload, User: "alice", Bytes: 5},
		} {
			m.Observe(&f)
		}
		for _, name := range []string{"wharf_logins_total", "wharf_operations_total", "wharf_transfer_bytes_total"} {
			hasUser := strings.Contains(strings.Join(labelNames(t, m, name), ","), "user")
			if hasUser != perUser {
				t.Errorf("per_user %v: %s labels %v", perUser, name, labelNames(t, m, name))
			}
		}
		if perUser {
			if v, _ := value(t, m, "wharf_transfer_bytes_total", map[string]string{"user": "alice"}); v != 5 {
				t.Errorf("alice's bytes = %v", v)
			}
		}
	}
}

type fakeDispatcher struct{ fired int }

func (d *fakeDispatcher) Handles(core.EventName, *core.User) bool { return true }
func (d *fakeDispatcher) Fire(context.Context, *core.Event)       { d.fired++ }

func TestWrapDispatcherAndScriptErrors(t *testing.T) {
	m := New(Options{})
	inner := &fakeDispatcher{}
	d := m.WrapDispatcher("s", inner)
	if !d.Handles(core.OnAuthSuccess, nil) {
		t.Fatal("Handles not passed through")
	}
	d.Fire(context.Background(), &core.Event{Name: core.OnAuthSuccess})
	d.Fire(context.Background(), &core.Event{Name: core.OnAuthSuccess})
	m.ScriptError("s", "OnAuthSuccess")
	if inner.fired != 2 {
		t.Fatalf("inner fired %d times", inner.fired)
	}
	for name, want := range map[string]float64{"wharf_script_runs_total": 2, "wharf_script_duration_seconds": 2, "wharf_script_errors_total": 1} {
		if v, _ := value(t, m, name, map[string]string{"site": "s", "event": "OnAuthSuccess"}); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
}

func TestLiveGaugesAndReloads(t *testing.T) {
	sc := &config.Site{Name: "live", VFS: []config.VFS{{Name: "m", Type: "memory"}}}
	site, err := core.NewSite(sc, core.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	m := New(Options{Sites: func() []*core.Site { return []*core.Site{site} }})
	sess, err := site.Connect(context.Background(), core.ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, Protocol: "SFTP"})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := value(t, m, "wharf_sessions_active", map[string]string{"site": "live", "protocol": "SFTP"}); v != 1 {
		t.Errorf("active sessions = %v, want 1", v)
	}
	sess.Close()
	if v, _ := value(t, m, "wharf_sessions_active", map[string]string{"site": "live"}); v != 0 {
		t.Errorf("active sessions after close = %v", v)
	}
	m.Reloaded(nil)
	m.Reloaded(fmt.Errorf("bad"))
	for result, want := range map[string]float64{"ok": 1, "error": 1} {
		if v, _ := value(t, m, "wharf_config_reloads_total", map[string]string{"result": result}); v != want {
			t.Errorf("reloads{%s} = %v", result, v)
		}
	}
	// The exposition format over HTTP, as Prometheus scrapes it.
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"wharf_build_info{version=", `wharf_config_reloads_total{result="ok"} 1`, "go_goroutines", "wharf_transfers_active{site=\"live\"} 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
