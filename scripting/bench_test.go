package scripting_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/scripting"
)

// docExample is the session logger of the Syncplify documentation, in Lua.
const docExample = `if Session then
  local sid = Session.GetID()
  local uname = Session.GetUserID()
  Log('User ' .. uname .. ' connected with session ID ' .. sid)
end
`

// benchSession writes scripts into a scripts folder, builds a site on a memory VFS with
// handlers, logging through a text handler (formatting included, output discarded), and
// returns the engine and a session logged in as alice.
func benchSession(b *testing.B, scripts map[string]string, hs []config.EventHandler) (*scripting.Engine, *core.Session) {
	b.Helper()
	dir := b.TempDir()
	for name, src := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	cfg := coretest.AliceOnMemory("bench", dir, hs)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := scripting.New(cfg, scripting.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close() })
	site := coretest.StartSite(b, cfg, eng, log)
	return eng, coretest.MustDialDirect(b, site, "alice", "pw")
}

// BenchmarkFire measures one event with 0, 1 and 3 handlers running the documentation
// example.
func BenchmarkFire(b *testing.B) {
	for _, n := range []int{0, 1, 3} {
		b.Run(fmt.Sprintf("handlers=%d", n), func(b *testing.B) {
			var hs []config.EventHandler
			for range n {
				hs = append(hs, config.EventHandler{Event: "OnAuthSuccess", Script: "log.lua"})
			}
			eng, s := benchSession(b, map[string]string{"log.lua": docExample}, hs)
			ctx := context.Background()
			ev := &core.Event{Name: core.OnAuthSuccess, Session: s, Conn: s.Conn()}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if eng.Handles(ev.Name, s.User()) {
					eng.Fire(ctx, ev)
				}
			}
		})
	}
}

// BenchmarkUploadHandlers fires BeforeFileUpload (an extension check) and AfterFileUpload (a
// log line), the pair TestE2EUploadHandlerOverhead measures over SFTP.
func BenchmarkUploadHandlers(b *testing.B) {
	eng, s := benchSession(b, overheadHandlers, []config.EventHandler{
		{Event: "BeforeFileUpload", Script: "before.lua"}, {Event: "AfterFileUpload", Script: "after.lua"}})
	ctx := context.Background()
	before := &core.Event{Name: core.BeforeFileUpload, Session: s, Conn: s.Conn(), RelPath: "/f0001.txt"}
	after := &core.Event{Name: core.AfterFileUpload, Session: s, Conn: s.Conn(), RelPath: "/f0001.txt"}
	b.ReportAllocs()
	for b.Loop() {
		eng.Fire(ctx, before)
		eng.Fire(ctx, after)
	}
}
