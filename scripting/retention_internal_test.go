package scripting

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// A pooled state keeps nothing of a run: after a run that built large values (in globals,
// locals of returned functions, a failed run), the state holds what it held before.
func TestStateKeepsNothingAfterRun(t *testing.T) {
	dir := t.TempDir()
	src := `
local function build(n) local t = {} for i = 1, n do t[i] = string.rep('x', 1000) .. i end return #t end
big = {}
for i = 1, 2000 do big[i] = string.rep('y', 1000) .. i end
local n = build(2000)
local s = string.rep('z', 1048576)
if EventHandler() == 'AfterFileUpload' then error('fail with ' .. #s) end
`
	if err := os.WriteFile(filepath.Join(dir, "big.lua"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Site{Name: "s", ScriptsDir: dir,
		EventHandlers: []config.EventHandler{{Event: "BeforeFileUpload", Script: "big.lua"}, {Event: "AfterFileUpload", Script: "big.lua"}},
		VFS:           []config.VFS{{Name: "mem", Type: "memory"}},
		Users:         []config.User{{ID: "alice", Password: "plain:pw", Home: config.Mount{VFS: "mem", Permissions: []string{"all"}}}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := New(cfg, Options{Logger: log, PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	site, err := core.NewSite(cfg, core.Options{Logger: log, Events: eng})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Shutdown(context.Background())
	ctx := context.Background()
	s, err := site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, Protocol: core.ProtoSFTP})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AuthPassword(ctx, "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	eng.Fire(ctx, &core.Event{Name: core.BeforeFileUpload, Session: s, Conn: s.Conn(), RelPath: "/a"})
	eng.Fire(ctx, &core.Event{Name: core.AfterFileUpload, Session: s, Conn: s.Conn(), RelPath: "/a"})
	v, err := eng.pool.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.pool.put(v)
	if held := v.L.ReachableMemory() - v.baseline; held > 64<<10 {
		t.Errorf("the state holds %d bytes more than before any run", held)
	}
	// The chunks the state keeps for the next runs do not keep the last run's globals.
	for h, fn := range v.chunks {
		if fn.Env != v.idleEnv {
			t.Errorf("the chunk of %s keeps the last run's environment", h.script)
		}
	}
}

// BenchmarkBaselineWalk measures one measure of a state that holds nothing of a run: the
// least a run pays each time its charges reach its budget.
func BenchmarkBaselineWalk(b *testing.B) {
	eng, err := New(&config.Site{Name: "s", ScriptsDir: b.TempDir()}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	v := eng.newVM()
	defer v.close()
	b.ReportAllocs()
	for b.Loop() {
		v.measureShared()
	}
	b.ReportMetric(float64(v.baseline), "bytes")
}
