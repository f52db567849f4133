package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	testHeartbeat = 100 * time.Millisecond
	testTTL       = 400 * time.Millisecond
)

// node is a Store with what its handlers heard and what it logged.
type node struct {
	*Store
	log *logBuffer

	mu         sync.Mutex
	bans       []heardBan
	lifts      []heardLift
	kicks      []string
	reloads    int
	reconnects int
	local      []core.ClusterSession
}

type heardBan struct {
	site string
	ban  core.ClusterBan
	at   time.Time
}

type heardLift struct {
	site string
	keys []netip.Prefix
	all  bool
}

func openNode(t testing.TB, dsn, id string, tune ...func(*Options)) *node {
	t.Helper()
	n := &node{log: &logBuffer{}}
	opts := Options{
		DSN: dsn, NodeID: id, Heartbeat: testHeartbeat, NodeTTL: testTTL, Version: "test", ConfigHash: "h1",
		Logger: slog.New(slog.NewTextHandler(n.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnBan: func(site string, b core.ClusterBan) {
			n.mu.Lock()
			n.bans = append(n.bans, heardBan{site, b, time.Now()})
			n.mu.Unlock()
		},
		OnLift: func(site string, keys []netip.Prefix, all bool) {
			n.mu.Lock()
			n.lifts = append(n.lifts, heardLift{site, keys, all})
			n.mu.Unlock()
		},
		OnKick: func(id string) {
			n.mu.Lock()
			n.kicks = append(n.kicks, id)
			n.mu.Unlock()
		},
		OnReload: func() {
			n.mu.Lock()
			n.reloads++
			n.mu.Unlock()
		},
		OnReconnect: func(context.Context) {
			n.mu.Lock()
			n.reconnects++
			n.mu.Unlock()
		},
		LocalSessions: func() []core.ClusterSession {
			n.mu.Lock()
			defer n.mu.Unlock()
			return append([]core.ClusterSession(nil), n.local...)
		},
	}
	for _, f := range tune {
		f(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	n.Store = s
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return n
}

func (n *node) heard(f func(n *node) bool) func() bool {
	return func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return f(n)
	}
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// sql runs a query on the database directly and returns the first column of its first row.
func sqlValue[T any](t testing.TB, dsn, q string, args ...any) T {
	t.Helper()
	c, err := pgx.Connect(ctx(t), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(context.Background())
	var v T
	if err := c.QueryRow(ctx(t), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func sqlExec(t testing.TB, dsn, q string, args ...any) {
	t.Helper()
	c, err := pgx.Connect(ctx(t), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx(t), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func session(id, site, user string) core.ClusterSession {
	return core.ClusterSession{ID: id, Site: site, User: user, Protocol: "sftp", RemoteIP: "192.0.2.1", Start: time.Now()}
}

var eventually = coretest.Eventually

var testKey = netip.MustParsePrefix("192.0.2.77/32")

// latestSchema is the schema version this build migrates to.
func latestSchema(t testing.TB) int {
	t.Helper()
	ms, err := loadMigrations(migrationFiles)
	if err != nil || len(ms) == 0 {
		t.Fatalf("migrations: %v", err)
	}
	return ms[len(ms)-1].version
}
