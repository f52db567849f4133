package scripting_test

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
	"github.com/wharf-project/wharf/scripting"
)

// Typical handlers, each as a Syncplify-style .js script and as the equivalent hand-written
// Lua, for BenchmarkJSvsLua.
var jsBenchHandlers = []struct {
	name, event string
	js, lua     string
}{
	{"doc-example", "OnAuthSuccess", docExampleJS, docExample},
	{"extension-check", "BeforeFileUpload", `
var ext = ExtractExt(CtxRelPath()).toLowerCase();
var blocked = [".exe", ".bat", ".cmd", ".scr"];
if (blocked.indexOf(ext) >= 0) {
  Log.Warn('blocked upload of ' + CtxRelPath());
  Session.BlockOperation();
}
`, `
local ext = string.lower(ExtractExt(CtxRelPath()))
local blocked = {".exe", ".bat", ".cmd", ".scr"}
for _, b in ipairs(blocked) do
  if b == ext then
    Log.Warn('blocked upload of ' .. CtxRelPath())
    Session.BlockOperation()
    break
  end
end
`},
	{"custom-data-log", "BeforeFileUpload", `
var items = Session.GetAllCustomData();
for (var i = 0; i < items.length; i++) {
  Log('item ' + i + ': ' + items[i]);
}
`, `
local items = Session.GetAllCustomData()
for i = 1, #items do
  Log('item ' .. (i - 1) .. ': ' .. items[i])
end
`},
}

// BenchmarkJSvsLua fires an event whose only handler is a typical script, translated from JS
// or hand-written in Lua, through the engine (BenchmarkFire's setup).
func BenchmarkJSvsLua(b *testing.B) {
	for _, hb := range jsBenchHandlers {
		for _, lang := range []string{"lua", "js"} {
			b.Run(hb.name+"/"+lang, func(b *testing.B) {
				src := hb.lua
				if lang == "js" {
					src = hb.js
				}
				benchHandler(b, hb.event, "h."+lang, src)
			})
		}
	}
}

func benchHandler(b *testing.B, event, script, src string) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, script), []byte(src), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := &config.Site{Name: "bench", ScriptsDir: dir, EventHandlers: []config.EventHandler{{Event: event, Script: script}},
		VFS:   []config.VFS{{Name: "mem", Type: "memory"}},
		Users: []config.User{{ID: "alice", Password: "plain:pw", Home: config.Mount{VFS: "mem", Permissions: []string{"all"}}}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := scripting.New(cfg, scripting.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	site, err := core.NewSite(cfg, core.Options{Logger: log, Events: eng})
	if err != nil {
		b.Fatal(err)
	}
	defer site.Shutdown(context.Background())
	ctx := context.Background()
	s, err := site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, Protocol: core.ProtoSFTP})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.AuthPassword(ctx, "alice", "pw"); err != nil {
		b.Fatal(err)
	}
	for _, d := range []string{"/in/a.csv", "/in/b.csv", "/in/c.csv"} {
		s.AddCustomData(d)
	}
	ev := &core.Event{Name: core.EventName(event), Session: s, Conn: s.Conn(), RelPath: "/in/setup.EXE"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		eng.Fire(ctx, ev)
	}
}
