package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func query(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(context.Background())
	var s string
	if err := c.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// Each test gets its own empty database on the one shared server, with the settings asked.
func TestNewDBFreshAndShared(t *testing.T) {
	a, b := NewDB(t), NewDB(t)
	if a == b {
		t.Fatal("two tests share a database")
	}
	ctx := context.Background()
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE x (v int)"); err != nil {
		t.Fatal(err)
	}
	if got := query(t, b, "SELECT count(*)::text FROM pg_tables WHERE tablename = 'x'"); got != "0" {
		t.Fatalf("table of one database seen in the other: %s", got)
	}
	for setting, want := range map[string]string{"fsync": "off", "synchronous_commit": "off",
		"full_page_writes": "off", "listen_addresses": "127.0.0.1"} {
		if got := query(t, a, "SHOW "+setting); got != want {
			t.Errorf("%s = %s, want %s", setting, got, want)
		}
	}
	if got := query(t, a, "SHOW max_connections"); got != "300" {
		t.Errorf("max_connections = %s", got)
	}
	if first := Shared(t); Shared(t) != first {
		t.Fatal("Shared started a second server")
	}
	if os.Geteuid() == 0 {
		if got := query(t, a, "SELECT current_setting('data_directory')"); !strings.HasPrefix(got, Shared(t).Dir) {
			t.Errorf("data directory %s outside %s", got, Shared(t).Dir)
		}
		fi, err := os.Stat(filepath.Join(Shared(t).Dir, "data"))
		if err != nil {
			t.Fatal(err)
		}
		if uid := fileUID(fi); uid == 0 {
			t.Error("the data folder belongs to root: the server must run unprivileged")
		}
	}
}

// A wrong password is refused: the server really authenticates TCP connections.
func TestPasswordRequired(t *testing.T) {
	s := Shared(t)
	dsn := strings.Replace(s.DSN("postgres"), s.Password, "wrong", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		c.Close(ctx)
		t.Fatal("connected with a wrong password")
	}
}

// Stop takes the server away (connections fail) and Start brings it back on the same port
// with the same data; Remove deletes its folder.
func TestStopStart(t *testing.T) {
	s := New(t)
	dsn := s.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	port := s.Port
	s.Stop()
	if s.Running() {
		t.Fatal("running after Stop")
	}
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if s.Port != port {
		t.Fatalf("port changed: %d → %d", port, s.Port)
	}
	if got := query(t, dsn, "SELECT v::text FROM kept"); got != "7" {
		t.Fatalf("data lost over a restart: %s", got)
	}
	// Paused: a query gets no answer; resumed: it does.
	c, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	qctx, qcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.Exec(qctx, "SELECT 1")
	qcancel()
	if err == nil {
		t.Fatal("a paused server answered")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if got := query(t, dsn, "SELECT v::text FROM kept"); got != "7" {
		t.Fatalf("after resume: %s", got)
	}
	s.Remove()
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Fatalf("folder left after Remove: %v", err)
	}
}

// Without the binaries a test is skipped, unless WHARF_E2E=1 makes it a failure.
func TestMissingBinaries(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	nowhere := filepath.Join(t.TempDir(), "*", "bin")
	for _, e2e := range []string{"", "1"} {
		t.Setenv("WHARF_E2E", e2e)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() { defer close(done); needIn(r, nowhere) }()
		<-done
		if e2e == "1" && (!r.failed || r.skipped) {
			t.Error("WHARF_E2E=1: missing PostgreSQL did not fail the test")
		}
		if e2e == "" && (!r.skipped || r.failed) {
			t.Error("missing PostgreSQL did not skip the test")
		}
	}
	if _, err := binaries(nowhere); err == nil {
		t.Error("found binaries with an empty PATH and no fallback folder")
	}
}

// recorder notes a skip or a failure instead of applying it to the test.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(string, ...any) {
	r.skipped = true
	runtime.Goexit()
}
func (r *recorder) Fatalf(string, ...any) {
	r.failed = true
	runtime.Goexit()
}
