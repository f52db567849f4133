package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/internal/pgtest"
)

// sessionIDs lists the node's session rows in the store.
func sessionIDs(t *testing.T, dsn, nodeID string) []string {
	t.Helper()
	return sqlValue[[]string](t, dsn, "SELECT COALESCE(array_agg(id ORDER BY id), '{}') FROM sessions WHERE node = $1", nodeID)
}

// PostgreSQL stopped: calls fail at once with ErrUnavailable, Health says down (logged once);
// started again: the node comes back by itself, rewrites its session rows from
// LocalSessions and runs OnReconnect. The password never shows in an error or the log.
func TestStoreStoppedAndStarted(t *testing.T) {
	srv := pgtest.New(t)
	dsn := srv.NewDB(t)
	a := openNode(t, dsn, "a")
	var errs []error
	for _, id := range []string{"s1", "s2"} {
		if _, err := a.ClaimSession(ctx(t), session(id, "site", "alice"), 0); err != nil {
			t.Fatal(err)
		}
	}
	// During the outage s1 ends and s3 starts on this node.
	a.mu.Lock()
	a.local = []core.ClusterSession{session("s2", "site", "alice"), session("s3", "site", "bob")}
	a.mu.Unlock()

	srv.Stop()
	start := time.Now()
	_, err := a.ClaimSession(ctx(t), session("s4", "site", "alice"), 0)
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("claim with the store stopped: %v", err)
	}
	errs = append(errs, err)
	if took > 4*time.Second {
		t.Fatalf("the first call took %v with the store stopped", took)
	}
	eventually(t, 5*time.Second, "Health to say down", func() bool { up, _, _ := a.Health(); return !up })
	if err := a.RecordSession(session("s5", "site", "carol")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("RecordSession with the store down: %v, want ErrUnavailable", err)
	}
	a.EndSessionLater("site", "s1") // dropped, never blocks
	up, since, last := a.Health()
	if up || since.IsZero() || last == "" {
		t.Fatalf("health: %v %v %q", up, since, last)
	}
	for _, call := range []func() error{
		func() error { _, err := a.Strike(ctx(t), "site", testKey, time.Now(), time.Minute); return err },
		func() error { _, _, _, err := a.AddUsage(ctx(t), "site", "alice", 1, 1, 10, 10, true); return err },
		func() error { _, err := a.Bans(ctx(t), "site"); return err },
		func() error { return a.EndSession(ctx(t), "site", "s1") },
	} {
		start := time.Now()
		err := call()
		if !errors.Is(err, ErrUnavailable) || time.Since(start) > time.Second {
			t.Fatalf("call while down: %v after %v", err, time.Since(start))
		}
		errs = append(errs, err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the node to reconnect", a.heard(func(n *node) bool { return n.reconnects == 1 }))
	if up, _, _ := a.Health(); !up {
		t.Fatal("health down after OnReconnect")
	}
	if got := sessionIDs(t, dsn, "a"); !slices.Equal(got, []string{"s2", "s3"}) {
		t.Fatalf("session rows after the outage: %v, want s2 s3", got)
	}
	if _, err := a.ClaimSession(ctx(t), session("s4", "site", "alice"), 0); err != nil {
		t.Fatalf("claim after the outage: %v", err)
	}
	logs := a.log.String()
	if n := strings.Count(logs, "cluster store unreachable"); n != 1 {
		t.Errorf("the outage logged %d times, want once:\n%s", n, logs)
	}
	if n := strings.Count(logs, "cluster store reachable again"); n != 1 {
		t.Errorf("the recovery logged %d times, want once:\n%s", n, logs)
	}
	for _, e := range errs {
		if strings.Contains(e.Error(), srv.Password) {
			t.Fatalf("an error holds the password: %v", e)
		}
	}
	if strings.Contains(logs, srv.Password) {
		t.Fatalf("the log holds the password:\n%s", logs)
	}
	if !strings.Contains(dsn, srv.Password) {
		t.Fatal("the test's connection string has no password: it proves nothing")
	}
}

// A hung database (no answers, connections open): a call gives up after its own timeout with
// ErrUnavailable, the next fail at once, and the node recovers when it answers again.
func TestStoreHung(t *testing.T) {
	srv := pgtest.New(t)
	dsn := srv.NewDB(t)
	a := openNode(t, dsn, "a")
	if _, err := a.ClaimSession(ctx(t), session("s1", "site", "alice"), 0); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = srv.Resume()
		}
	}()
	start := time.Now()
	_, err := a.ClaimSession(context.Background(), session("s2", "site", "alice"), 0)
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) || took > 4*time.Second {
		t.Fatalf("claim on a hung store: %v after %v", err, took)
	}
	t.Logf("a call to a hung store gave up after %v", took.Round(time.Millisecond))
	start = time.Now()
	if _, err := a.Sessions(context.Background()); !errors.Is(err, ErrUnavailable) || time.Since(start) > time.Second {
		t.Fatalf("next call: %v after %v", err, time.Since(start))
	}
	a.mu.Lock()
	a.local = []core.ClusterSession{session("s1", "site", "alice")}
	a.mu.Unlock()
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	eventually(t, 20*time.Second, "the node to reconnect", a.heard(func(n *node) bool { return n.reconnects == 1 }))
	if got := sessionIDs(t, dsn, "a"); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("session rows after the outage: %v", got)
	}
}

// A store down when the node starts: Open succeeds with the Store down; when the store
// comes, the schema is applied, the node registered with its sessions and OnReconnect run.
func TestOpenWhileStoreDown(t *testing.T) {
	srv := pgtest.New(t)
	dsn := srv.NewDB(t)
	srv.Stop()
	a := openNode(t, dsn, "a")
	if up, _, last := a.Health(); up || last == "" {
		t.Fatalf("health with the store down at start: %v %q", up, last)
	}
	if !strings.Contains(a.log.String(), "cluster store unreachable at start") {
		t.Fatalf("not logged: %s", a.log.String())
	}
	if _, err := a.ClaimSession(ctx(t), session("s1", "site", "alice"), 0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("claim: %v", err)
	}
	a.mu.Lock()
	a.local = []core.ClusterSession{session("s1", "site", "alice")}
	a.mu.Unlock()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the node to join", a.heard(func(n *node) bool { return n.reconnects == 1 }))
	if got := sessionIDs(t, dsn, "a"); !slices.Equal(got, []string{"s1"}) {
		t.Fatalf("session rows: %v", got)
	}
	if v := sqlValue[int](t, dsn, "SELECT max(version) FROM wharf_schema"); v != latestSchema(t) {
		t.Fatalf("schema version %d", v)
	}
	if strings.Contains(a.log.String(), srv.Password) {
		t.Fatal("the log holds the password")
	}
}
