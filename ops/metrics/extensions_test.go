package metrics

import (
	"testing"
	"time"
)

func TestAsyncAndMailMetrics(t *testing.T) {
	m := New(Options{})
	m.AsyncRun("main", "AfterFileUpload", 20*time.Millisecond, false)
	m.AsyncRun("main", "AfterFileUpload", time.Second, true)
	m.AsyncDropped("main", "OnConnectionClose")
	depth := 3
	m.WatchAsyncQueue("main", func() int { return depth })
	m.MailQueued("main")
	m.MailAttempt("main", "deferred")
	m.MailAttempt("main", "sent")
	spool := 2
	m.WatchMailSpool(func() int { return spool })
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"wharf_script_async_runs_total", map[string]string{"site": "main", "event": "AfterFileUpload", "result": "ok"}, 1},
		{"wharf_script_async_runs_total", map[string]string{"result": "failed"}, 1},
		{"wharf_script_async_duration_seconds", map[string]string{"event": "AfterFileUpload"}, 2},
		{"wharf_script_async_dropped_total", map[string]string{"site": "main", "event": "OnConnectionClose"}, 1},
		{"wharf_script_async_queue_depth", map[string]string{"site": "main"}, 3},
		{"wharf_mail_queued_total", map[string]string{"site": "main"}, 1},
		{"wharf_mail_deliveries_total", map[string]string{"site": "main", "result": "sent"}, 1},
		{"wharf_mail_deliveries_total", map[string]string{"result": "deferred"}, 1},
		{"wharf_mail_spool_messages", nil, 2},
	} {
		if v, ok := value(t, m, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	depth, spool = 0, 5
	if v, _ := value(t, m, "wharf_script_async_queue_depth", nil); v != 0 {
		t.Errorf("queue depth after it drained = %v", v)
	}
	if v, _ := value(t, m, "wharf_mail_spool_messages", nil); v != 5 {
		t.Errorf("spool = %v", v)
	}
}

// TestClusterStoreMetrics: wharf_cluster_store_up follows the store's health when scraped,
// and wharf_cluster_store_errors_total counts failures by operation; a single node (no
// WatchClusterStore) has no store gauge.
func TestClusterStoreMetrics(t *testing.T) {
	single := New(Options{})
	if _, ok := value(t, single, "wharf_cluster_store_up", nil); ok {
		t.Error("a single node reports wharf_cluster_store_up")
	}
	m := New(Options{})
	up := true
	m.WatchClusterStore(func() bool { return up })
	if v, ok := value(t, m, "wharf_cluster_store_up", nil); !ok || v != 1 {
		t.Errorf("store up: %v (found %v)", v, ok)
	}
	up = false
	m.ClusterStoreError("claim_session")
	m.ClusterStoreError("claim_session")
	m.ClusterStoreError("strike")
	if v, _ := value(t, m, "wharf_cluster_store_up", nil); v != 0 {
		t.Errorf("store down: %v", v)
	}
	if v, _ := value(t, m, "wharf_cluster_store_errors_total", map[string]string{"operation": "claim_session"}); v != 2 {
		t.Errorf("claim_session errors: %v", v)
	}
	if v, _ := value(t, m, "wharf_cluster_store_errors_total", map[string]string{"operation": "strike"}); v != 1 {
		t.Errorf("strike errors: %v", v)
	}
}
