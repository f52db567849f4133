package scripting

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
)

// callsPerRun is how many times a benchmark's script repeats its line in one run, so that a
// run's fixed cost (the event, the environment) is a small part of what is measured.
const callsPerRun = 1000

// BenchmarkHostMethodCall measures calls of host objects' methods from scripts: a method of
// a long-lived object (the current VFS, a Counter) with and without self, results read
// through their methods, and a fluent chain on a fresh object (HttpCli). ns/call and
// allocs/call are per repetition of the line (a loop of callsPerRun in each run).
func BenchmarkHostMethodCall(b *testing.B) {
	loop := func(pre, line string) string {
		return pre + "\nfor i = 1, 1000 do\n" + line + "\nend\n"
	}
	jsLoop := func(pre, line string) string {
		return "{\n" + pre + "\nfor (var i = 0; i < 1000; i++) {\n" + line + "\n}\n}\n"
	}
	cases := []struct{ name, file, src string }{
		{"empty-loop", "b.lua", loop("local x", "x = i")},
		{"counter.Value()", "b.lua", loop("local c = Counter(1)", "c.Value()")},
		{"counter:Value()", "b.lua", loop("local c = Counter(1)", "c:Value()")},
		{"counter.Add(1)", "b.lua", loop("local c = Counter(1)", "c.Add(1)")},
		{"Counter(1).Value()", "b.lua", loop("", "Counter(1).Value()")},
		{"vfs.Name", "b.lua", loop("local vfs = GetCurrentVFS()", "local n = vfs.Name")},
		{"vfs.Stat(p).Ok()", "b.lua", loop("local vfs = GetCurrentVFS()", "if not vfs.Stat('/d').Ok() then error('stat') end")},
		{"vfs:Stat(p):Ok()", "b.lua", loop("local vfs = GetCurrentVFS()", "if not vfs:Stat('/d'):Ok() then error('stat') end")},
		{"vfs.Stat(p).Info().Size", "b.lua", loop("local vfs = GetCurrentVFS()", "local n = vfs.Stat('/d').Info().Size")},
		{"HttpCli().Url(u)", "b.lua", loop("", "HttpCli().Url('http://example.com/')")},
		{"HttpCli().Url(u).Header(k,v).Timeout(5)", "b.lua", loop("", "HttpCli().Url('http://example.com/').Header('X-A', 'b').Timeout(5)")},
		{"js vfs.Stat(p).Ok()", "b.js", jsLoop("var vfs = GetCurrentVFS();", "if (!vfs.Stat('/d').Ok()) { throw new Error('stat'); }")},
		{"js new HttpCli().Url(u)", "b.js", jsLoop("", "new HttpCli().Url('http://example.com/');")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			eng, ev := benchClassEngine(b, []*hostClass{counterClass, counterSnap}, c.file, c.src)
			ctx := context.Background()
			eng.Fire(ctx, ev) // warm the state: its chunk, the current VFS
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				eng.Fire(ctx, ev)
			}
			calls := float64(b.N) * callsPerRun
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/calls, "ns/call")
			b.StopTimer()
		})
	}
}

// benchClassEngine builds an engine of one state, with classes installed, running src as
// alice's BeforeFileUpload handler (failures fail the benchmark), and the event to fire.
func benchClassEngine(b *testing.B, classes []*hostClass, file, src string) (*Engine, *core.Event) {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(src), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := coretest.AliceOnMemory("s", dir, []config.EventHandler{{Event: "BeforeFileUpload", Script: file, OnError: "continue"}})
	sink := &failSink{}
	eng, err := New(cfg, Options{Logger: slog.New(sink), PoolSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close() })
	eng.classes = classes
	site := coretest.StartSite(b, cfg, eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	s := coretest.MustDialDirect(b, site, "alice", "pw")
	if err := s.Mkdir(ctx, "/d"); err != nil {
		b.Fatal(err)
	}
	ev := &core.Event{Name: core.BeforeFileUpload, Session: s, Conn: s.Conn(), RelPath: "/a"}
	eng.Fire(ctx, ev)
	if sink.failed != "" {
		b.Fatalf("the script failed: %s", sink.failed)
	}
	return eng, ev
}

// failSink keeps the first failure the engine logs.
type failSink struct{ failed string }

func (s *failSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *failSink) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && s.failed == "" {
		s.failed = r.Message
		r.Attrs(func(a slog.Attr) bool {
			s.failed += " " + a.Key + "=" + a.Value.String()
			return true
		})
	}
	return nil
}
func (s *failSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *failSink) WithGroup(string) slog.Handler      { return s }
