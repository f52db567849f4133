package scripting_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting"
)

// record is one captured log line with its attributes flattened to text.
type record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// logSink captures log records of a site and its engine.
type logSink struct {
	mu      sync.Mutex
	records []record
}

type sinkHandler struct {
	sink  *logSink
	attrs []slog.Attr
}

func (h *sinkHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *sinkHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.sink.mu.Lock()
	h.sink.records = append(h.sink.records, rec)
	h.sink.mu.Unlock()
	return nil
}
func (h *sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &sinkHandler{sink: h.sink, attrs: append(slices.Clip(h.attrs), as...)}
}
func (h *sinkHandler) WithGroup(string) slog.Handler { return h }

func (s *logSink) logger() *slog.Logger { return slog.New(&sinkHandler{sink: s}) }

// find returns the records whose message contains msg.
func (s *logSink) find(msg string) []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []record
	for _, r := range s.records {
		if strings.Contains(r.Msg, msg) {
			out = append(out, r)
		}
	}
	return out
}

// scriptLines returns the messages scripts logged (records tagged with a script), in order.
func (s *logSink) scriptLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.records {
		if r.Attrs["script"] != "" && r.Attrs["event"] != "" && !strings.HasPrefix(r.Msg, "event script") &&
			!strings.Contains(r.Msg, "has no effect") {
			out = append(out, r.Msg)
		}
	}
	return out
}

func (s *logSink) reset() {
	s.mu.Lock()
	s.records = nil
	s.mu.Unlock()
}

func (s *logSink) dump(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		t.Logf("%s %s %v", r.Level, r.Msg, r.Attrs)
	}
}

// env is a test site with its engine.
type env struct {
	t      *testing.T
	dir    string // scripts_dir
	root   string // disk vfs root
	cfg    *config.Site
	site   *core.Site
	engine *scripting.Engine
	logs   *logSink
	mu     sync.Mutex
	acts   []scripting.Action
}

// h builds a handler entry.
func h(event, script string, mut ...func(*config.EventHandler)) config.EventHandler {
	eh := config.EventHandler{Event: event, Script: script}
	for _, m := range mut {
		m(&eh)
	}
	return eh
}

func timeout(d time.Duration) func(*config.EventHandler) {
	return func(h *config.EventHandler) { h.Timeout.Duration = d }
}

func onError(s string) func(*config.EventHandler) {
	return func(h *config.EventHandler) { h.OnError = s }
}

func priority(p int) func(*config.EventHandler) {
	return func(h *config.EventHandler) { h.Priority = p }
}

// testUser is a user with password "pw" whose home is on the disk vfs.
func testUser(id string, mut ...func(*config.User)) config.User {
	u := config.User{ID: id, Password: "plain:pw", Email: id + "@example.com", Description: "test user " + id,
		Home: config.Mount{VFS: "disk", Permissions: []string{"all"}}}
	for _, m := range mut {
		m(&u)
	}
	return u
}

// newEnv writes scripts into a scripts_dir and builds a site whose events run on a real
// engine. scripts maps file names to sources.
func newEnv(t *testing.T, scripts map[string]string, handlers []config.EventHandler, users ...config.User) *env {
	t.Helper()
	cfg, root := newConfig(t, scripts, handlers, users...)
	return buildEnv(t, cfg, root)
}

// newConfig returns the configuration newEnv uses and the root of its disk vfs.
func newConfig(t *testing.T, scripts map[string]string, handlers []config.EventHandler, users ...config.User) (*config.Site, string) {
	t.Helper()
	dir := t.TempDir()
	for name, src := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	yes := true
	if len(users) == 0 {
		users = []config.User{testUser("alice")}
	}
	cfg := &config.Site{
		Name:   "test",
		Limits: config.Limits{MaxConnections: 100, MaxConnectionsPerIP: 100, MaxSessionsPerUser: 100},
		Protector: config.Protector{Enabled: &yes, Threshold: 100, Window: config.Duration{Duration: time.Minute},
			BanFor: config.Duration{Duration: time.Minute}},
		VFS: []config.VFS{
			{Name: "disk", Type: "disk", Root: filepath.Join(root, "{user}"), AtomicUploads: &yes},
			{Name: "mem", Type: "memory"},
		},
		Users:         users,
		ScriptsDir:    dir,
		EventHandlers: handlers,
	}
	return cfg, root
}

func buildEnv(t *testing.T, cfg *config.Site, root string) *env {
	t.Helper()
	return buildEnvPool(t, cfg, root, 4)
}

// buildEnvPool is buildEnv with an engine of poolSize Lua states (1: every run reuses the
// same state).
func buildEnvPool(t *testing.T, cfg *config.Site, root string, poolSize int) *env {
	t.Helper()
	return buildEnvOpts(t, cfg, root, func(o *scripting.Options) { o.PoolSize = poolSize })
}

func (e *env) actions() []scripting.Action {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]scripting.Action(nil), e.acts...)
}

// connect opens an unauthenticated session from ip.
func (e *env) connect(ip, proto string) *core.Session {
	e.t.Helper()
	s, err := e.site.Connect(context.Background(), core.ConnInfo{
		Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}, Local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22},
		Protocol: proto})
	if err != nil {
		e.t.Fatalf("connect: %v", err)
	}
	e.t.Cleanup(s.Close)
	return s
}

// login opens a session from 192.0.2.10 over SFTP and authenticates id with password "pw".
func (e *env) login(id string) *core.Session {
	e.t.Helper()
	s := e.connect("192.0.2.10", core.ProtoSFTP)
	if err := s.AuthPassword(context.Background(), id, "pw"); err != nil {
		e.t.Fatalf("login %s: %v", id, err)
	}
	return s
}

func upload(s *core.Session, p, data string) error {
	ctx := context.Background()
	w, err := s.OpenWrite(ctx, p, core.WriteMode{Truncate: true}, 0)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, data); err != nil {
		w.Abort(err)
	}
	return w.Close()
}

func download(s *core.Session, p string) (string, error) {
	r, err := s.OpenRead(context.Background(), p, 0)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return string(b), err
}

// lines builds a Lua source from lines.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// wantLines fails unless the scripts logged exactly want.
func (e *env) wantLines(want ...string) {
	e.t.Helper()
	got := e.logs.scriptLines()
	if !slices.Equal(got, want) {
		e.logs.dump(e.t)
		e.t.Fatalf("script log lines:\n got %q\nwant %q", got, want)
	}
}

// logged returns the script log lines as a map of "key=value" lines.
func (e *env) kv() map[string]string {
	out := map[string]string{}
	for _, l := range e.logs.scriptLines() {
		if k, v, ok := strings.Cut(l, "="); ok {
			out[k] = v
		}
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
