package scripting_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/scripting"
)

// gate is an HTTP endpoint that holds every request until it is opened: an asynchronous
// handler that calls it is "still running" for as long as the test wants.
type gate struct {
	*hookServer
	open    chan struct{}
	once    sync.Once
	arrived atomic.Int32
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	g.hookServer = newHookServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		g.arrived.Add(1)
		select {
		case <-g.open:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// waitScript calls the gate, then logs what its session looks like.
func waitScript(g *gate) string {
	return lines(
		"HttpCli().Url('"+g.URL+"/wait').Get()",
		"Log('ran ' .. CtxRelPath() .. ' rel=' .. Session.GetRelPath() .. ' cmd=' .. Session.GetLastCommand() ..",
		"  ' custom=' .. table.concat(Session.GetAllCustomData(), ',') .. ' user=' .. Session.GetUserID())",
	)
}

func asyncOpts(m scripting.AsyncMetrics, workers, queue int) func(*scripting.Options) {
	return func(o *scripting.Options) {
		o.AsyncMetrics, o.AsyncWorkers, o.AsyncQueue = m, workers, queue
	}
}

// An asynchronous AfterFileUpload handler does not hold the client: the SFTP upload
// completes while the handler is still waiting on a web hook.
func TestE2EAsyncHandlerDoesNotHoldTheClient(t *testing.T) {
	g := newGate(t)
	counts := newAsyncCounts()
	s := newSSHStack(t, map[string]string{"hook.lua": waitScript(g)}, []config.EventHandler{h("AfterFileUpload", "hook.lua", async)},
		asyncOpts(counts, 2, 10))
	c := s.pkgSFTP(t, "alice", "pw")
	must(t, c.upload("/a.txt", []byte("a")))
	must(t, c.upload("/b.txt", []byte("b")))
	// Both uploads returned; both handlers are waiting for the hook.
	coretest.Eventually(t, 5*time.Second, "two handlers at the hook", func() bool { return g.arrived.Load() == 2 })
	if got := s.logs.scriptLines(); len(got) != 0 {
		t.Fatalf("handlers finished before the hook answered: %q", got)
	}
	g.release()
	s.waitRecords(t, "ran ", 2)
	if counts.get(counts.runs, "AfterFileUpload") != 2 || counts.get(counts.failed, "AfterFileUpload") != 0 {
		t.Errorf("runs = %v, failed = %v", counts.runs, counts.failed)
	}
}

// An asynchronous run sees the session as it was when the event fired, whatever the client
// did since; what it adds to the custom data reaches the live session.
func TestAsyncHandlerSeesASnapshot(t *testing.T) {
	g := newGate(t)
	scripts := map[string]string{
		"hook.lua":  waitScript(g) + "Session.AddCustomData('from-async')\n",
		"mark.lua":  "Session.AddCustomData('sync:' .. CtxRelPath())\n",
		"later.lua": "Session.AddCustomData('later')\n",
	}
	cfg, root := newConfig(t, scripts, []config.EventHandler{
		h("AfterFileUpload", "hook.lua", async), h("AfterFileUpload", "mark.lua"), h("AfterDirCreate", "later.lua")})
	e := buildEnvOpts(t, cfg, root, nil)
	s := e.login("alice")
	must(t, upload(s, "/a.txt", "x"))
	coretest.Eventually(t, 5*time.Second, "the handler at the hook", func() bool { return g.arrived.Load() == 1 })
	must(t, s.Mkdir(context.Background(), "/dir"))
	g.release()
	recs := e.waitRecords(t, "ran ", 1)
	if want := "ran /a.txt rel=/a.txt cmd=OPEN /a.txt custom=sync:/a.txt user=alice"; recs[0].Msg != want {
		t.Errorf("async run saw %q, want %q", recs[0].Msg, want)
	}
	coretest.Eventually(t, 5*time.Second, "the async handler's custom data", func() bool {
		return strings.Join(s.AllCustomData(), ",") == "sync:/a.txt,later,from-async"
	})
}

// BlockOperation has no effect in an asynchronous handler (it runs after the operation);
// Terminate still ends the session.
func TestAsyncBlockOperationAndTerminate(t *testing.T) {
	scripts := map[string]string{
		"block.lua": "Session.BlockOperation()\nLog('blocked')\n",
		"kick.lua":  "if Session.GetUserID() == 'bob' then Terminate(false) end\n",
	}
	cfg, root := newConfig(t, scripts, []config.EventHandler{h("AfterFileUpload", "block.lua", async), h("OnAuthSuccess", "kick.lua", async)},
		testUser("alice"), testUser("bob"))
	e := buildEnvOpts(t, cfg, root, nil)
	s := e.login("alice")
	must(t, upload(s, "/a.txt", "x"))
	e.waitRecords(t, "blocked", 1)
	if warns := e.logs.find("BlockOperation has no effect"); len(warns) != 1 || !strings.Contains(warns[0].Msg, "asynchronous") {
		t.Errorf("warnings = %v", warns)
	}
	if err := upload(s, "/b.txt", "y"); err != nil {
		t.Errorf("the next operation was refused: %v", err)
	}
	bob := e.login("bob")
	coretest.Eventually(t, 5*time.Second, "bob's session to end", func() bool { return bob.Context().Err() != nil })
	if s.Context().Err() != nil {
		t.Error("alice's session ended too")
	}
}

// With atomic uploads the asynchronous handlers run once the upload is published, and not
// at all when a synchronous handler discarded it.
func TestAsyncHandlerAfterAtomicUpload(t *testing.T) {
	scripts := map[string]string{
		"veto.lua": "if ExtractExt(CtxRelPath()) == '.exe' then Session.BlockOperation() end\n",
		"note.lua": "Log('async ' .. CtxRelPath())\n",
	}
	cfg, root := newConfig(t, scripts, []config.EventHandler{h("AfterFileUpload", "note.lua", async), h("AfterFileUpload", "veto.lua")})
	counts := newAsyncCounts()
	e := buildEnvOpts(t, cfg, root, asyncOpts(counts, 1, 10))
	s := e.login("alice")
	if err := upload(s, "/setup.exe", "MZ"); err == nil {
		t.Fatal("the vetoed upload succeeded")
	}
	must(t, upload(s, "/ok.txt", "fine"))
	e.waitRecords(t, "async ", 1)
	// One worker runs the queue in order: a run for setup.exe would have come first.
	if got := e.logs.scriptLines(); len(got) != 1 || got[0] != "async /ok.txt" {
		t.Errorf("async runs: %q", got)
	}
	if counts.get(counts.runs, "AfterFileUpload") != 1 {
		t.Errorf("runs = %v", counts.runs)
	}
}

// A full queue drops a run (logged and counted) or, with on_full: wait, makes the event
// wait for room.
func TestAsyncQueueFull(t *testing.T) {
	for _, mode := range []string{"drop", "wait"} {
		t.Run(mode, func(t *testing.T) {
			g := newGate(t)
			cfg, root := newConfig(t, map[string]string{"hook.lua": waitScript(g)}, []config.EventHandler{
				h("AfterFileUpload", "hook.lua", async, func(h *config.EventHandler) { h.OnFull = mode })})
			counts := newAsyncCounts()
			e := buildEnvOpts(t, cfg, root, asyncOpts(counts, 1, 1))
			s := e.login("alice")
			must(t, upload(s, "/1.txt", "x")) // runs, held at the hook
			coretest.Eventually(t, 5*time.Second, "the first run at the hook", func() bool { return g.arrived.Load() == 1 })
			must(t, upload(s, "/2.txt", "x")) // waits in the queue
			if d := e.engine.AsyncQueueDepth(); d != 1 {
				t.Fatalf("queue depth = %d, want 1", d)
			}
			third := make(chan error, 1)
			go func() { third <- upload(s, "/3.txt", "x") }()
			if mode == "drop" {
				must(t, <-third) // the upload itself succeeds; only its handler is dropped
				drops := e.waitRecords(t, "asynchronous event handler dropped", 1)
				if !strings.Contains(drops[0].Msg, "the queue is full (scripting.async_queue: 1)") || drops[0].Attrs["script"] != "hook.lua" {
					t.Errorf("drop logged as %+v", drops[0])
				}
				g.release()
				e.waitRecords(t, "ran ", 2)
				if counts.get(counts.dropped, "AfterFileUpload") != 1 {
					t.Errorf("dropped = %v", counts.dropped)
				}
				return
			}
			g.release()
			must(t, <-third)
			e.waitRecords(t, "ran ", 3)
			if counts.get(counts.dropped, "AfterFileUpload") != 0 || counts.get(counts.runs, "AfterFileUpload") != 3 {
				t.Errorf("dropped = %v, runs = %v", counts.dropped, counts.runs)
			}
		})
	}
}

// Drain lets the queued runs finish; past its deadline it drops what is left, and nothing
// is queued after it.
func TestAsyncDrain(t *testing.T) {
	t.Run("all run", func(t *testing.T) {
		g := newGate(t)
		cfg, root := newConfig(t, map[string]string{"hook.lua": waitScript(g)}, []config.EventHandler{h("AfterFileUpload", "hook.lua", async)})
		e := buildEnvOpts(t, cfg, root, asyncOpts(nil, 1, 10))
		s := e.login("alice")
		for _, p := range []string{"/1", "/2", "/3"} {
			must(t, upload(s, p, "x"))
		}
		done := make(chan error, 1)
		go func() { done <- e.engine.Drain(context.Background()) }()
		coretest.Eventually(t, 5*time.Second, "the first run at the hook", func() bool { return g.arrived.Load() == 1 })
		g.release()
		must(t, <-done)
		if n := len(e.records("ran ")); n != 3 {
			t.Errorf("%d runs before Drain returned, want 3", n)
		}
		must(t, upload(s, "/4", "x"))
		if drops := e.records("asynchronous event handler dropped: the server is shutting down"); len(drops) != 1 {
			t.Errorf("after Drain: %v", drops)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		g := newGate(t)
		cfg, root := newConfig(t, map[string]string{"hook.lua": waitScript(g)}, []config.EventHandler{h("AfterFileUpload", "hook.lua", async)})
		counts := newAsyncCounts()
		e := buildEnvOpts(t, cfg, root, asyncOpts(counts, 1, 10))
		s := e.login("alice")
		for _, p := range []string{"/1", "/2", "/3"} {
			must(t, upload(s, p, "x"))
		}
		coretest.Eventually(t, 5*time.Second, "the first run at the hook", func() bool { return g.arrived.Load() == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- e.engine.Drain(ctx) }()
		// The queued runs are dropped at the deadline; the one in progress ends when it can.
		coretest.Eventually(t, 5*time.Second, "two drops", func() bool { return counts.get(counts.dropped, "AfterFileUpload") == 2 })
		g.release()
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "2 asynchronous handler runs dropped") || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Drain = %v", err)
		}
		if counts.get(counts.dropped, "AfterFileUpload") != 2 || len(e.records("asynchronous event handler dropped: the shutdown grace ran out")) != 2 {
			t.Errorf("dropped = %v", counts.dropped)
		}
	})
}

func TestAsyncFailuresAreCounted(t *testing.T) {
	scripts := map[string]string{"boom.lua": "error('boom')\n", "loop.lua": "while true do end\n", "ok.lua": "Log('ok')\n"}
	cfg, root := newConfig(t, scripts, []config.EventHandler{
		h("AfterFileUpload", "boom.lua", async), h("AfterFileUpload", "loop.lua", async, timeout(100*time.Millisecond)),
		h("AfterFileUpload", "ok.lua", async)})
	counts := newAsyncCounts()
	e := buildEnvOpts(t, cfg, root, asyncOpts(counts, 1, 10))
	s := e.login("alice")
	must(t, upload(s, "/a", "x"))
	coretest.Eventually(t, 5*time.Second, "three runs", func() bool { return counts.get(counts.runs, "AfterFileUpload") == 3 })
	if counts.get(counts.failed, "AfterFileUpload") != 2 {
		t.Errorf("failed = %v", counts.failed)
	}
	if len(e.records("event script failed")) != 1 || len(e.records("event script timed out")) != 1 || len(e.records("ok")) != 1 {
		e.logs.dump(t)
		t.Error("the failures or the good run are not logged")
	}
}

// Gate events stay synchronous, also in a configuration built in code.
func TestAsyncRefusedForGateEvents(t *testing.T) {
	cfg, _ := newConfig(t, map[string]string{"x.lua": ""}, []config.EventHandler{h("BeforeFileUpload", "x.lua", async)})
	_, err := scripting.New(cfg, scripting.Options{})
	var le *scripting.LoadError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "BeforeFileUpload cannot be async") {
		t.Errorf("New = %v", err)
	}
}

// The protector's events and OnAuthFail can be asynchronous: they see the event's session
// (or, without one, the connection), and Conn.Reject does nothing there.
func TestAsyncProtectorEvents(t *testing.T) {
	scripts := map[string]string{
		"fail.lua":   "Log('authfail ' .. Session.GetRemoteAddress() .. ' ' .. EventHandler())\n",
		"strike.lua": "Log('strike ' .. Session.GetRemoteAddress())\n",
		"ban.lua":    "Log('ban ' .. Conn.GetRemoteAddress())\n",
		"hit.lua":    "Conn.Reject()\nLog('hit ' .. Conn.GetRemoteAddress() .. ' ' .. tostring(Session))\n",
	}
	cfg, root := newConfig(t, scripts, []config.EventHandler{
		h("OnAuthFail", "fail.lua", async), h("OnProtectorStrike", "strike.lua", async),
		h("OnBlocklistAdd", "ban.lua", async), h("OnBlocklistHit", "hit.lua", async)})
	cfg.Protector.Threshold = 2
	e := buildEnvOpts(t, cfg, root, nil)
	for range 2 {
		s := e.connect("198.51.100.7", "SFTP")
		if err := s.AuthPassword(context.Background(), "alice", "wrong"); err == nil {
			t.Fatal("a wrong password logged in")
		}
		s.Close()
	}
	e.waitRecords(t, "ban 198.51.100.7", 1)
	if _, err := e.site.Connect(context.Background(), connInfo("198.51.100.7")); err == nil {
		t.Fatal("a banned address connected")
	}
	e.waitRecords(t, "hit 198.51.100.7 nil", 1)
	e.waitRecords(t, "authfail 198.51.100.7 OnAuthFail", 2)
	e.waitRecords(t, "strike 198.51.100.7", 2)
	if warns := e.logs.find("Conn.Reject has no effect"); len(warns) != 1 {
		t.Errorf("Conn.Reject warnings: %v", warns)
	}
}

func connInfo(ip string) core.ConnInfo {
	return core.ConnInfo{Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000},
		Local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}, Protocol: core.ProtoSFTP}
}
