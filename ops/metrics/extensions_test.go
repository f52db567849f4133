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
