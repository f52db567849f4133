package scripting_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting"
)

func TestCompileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600))
	}
	write("ok.lua", "Log('fine')\n")
	write("x.lua", "local a = 1\nif a then\n  Log('x' .. )\nend\n")
	write("eof.lua", "if true then\n")
	write("old.js", "Log('x')\n")
	cfg := &config.Site{Name: "s", ScriptsDir: dir,
		EventHandlers: []config.EventHandler{h("OnAuthSuccess", "ok.lua"), h("OnAuthSuccess", "x.lua"),
			h("OnAuthSuccess", "missing.lua"), h("NoSuchEvent", "ok.lua")},
		Users: []config.User{{ID: "u", EventHandlers: []config.EventHandler{h("OnAuthSuccess", "eof.lua"), h("OnAuthSuccess", "old.js")}}}}
	_, err := scripting.New(cfg, scripting.Options{})
	var le *scripting.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("New: %v, want a *LoadError", err)
	}
	if len(le.Scripts) != 4 {
		t.Fatalf("%d problems, want 4:\n%v", len(le.Scripts), err)
	}
	syntax := le.Scripts[0]
	if syntax.File != filepath.Join(dir, "x.lua") || syntax.Line != 3 ||
		!strings.HasPrefix(syntax.Error(), filepath.Join(dir, "x.lua")+":3: ") {
		t.Errorf("syntax error: %+v (%s)", syntax, syntax)
	}
	for i, want := range []string{"x.lua:3:", "missing.lua: cannot read script", `unknown event "NoSuchEvent"`,
		"eof.lua:2:"} {
		if !strings.Contains(le.Scripts[i].Error(), want) {
			t.Errorf("problem %d = %q, want it to contain %q", i, le.Scripts[i], want)
		}
	}
	if !strings.Contains(le.Scripts[3].Error(), "user u") {
		t.Errorf("a user's script error names the user: %q", le.Scripts[3])
	}
}

func TestHandlerOrder(t *testing.T) {
	scripts := map[string]string{}
	for _, n := range []string{"u1", "u5", "s-1", "s3a", "s3b"} {
		scripts[n+".lua"] = "Log('" + n + "')\n"
	}
	alice := testUser("alice", func(u *config.User) {
		u.EventHandlers = []config.EventHandler{h("OnAuthSuccess", "u5.lua", priority(5)), h("OnAuthSuccess", "u1.lua", priority(1))}
	})
	e := newEnv(t, scripts, []config.EventHandler{h("OnAuthSuccess", "s3a.lua", priority(3)),
		h("OnAuthSuccess", "s-1.lua", priority(-1)), h("OnAuthSuccess", "s3b.lua", priority(3))}, alice, testUser("bob"))
	e.login("alice")
	e.wantLines("u1", "u5", "s-1", "s3a", "s3b")
	// Another user runs only the site's handlers.
	e.logs.reset()
	e.login("bob")
	e.wantLines("s-1", "s3a", "s3b")
	// Handles reports the user's own events.
	u, _ := e.site.LookupUser("alice")
	if !e.engine.Handles(core.OnAuthSuccess, u) || e.engine.Handles(core.BeforeFileUpload, u) {
		t.Error("Handles disagrees with the configured handlers")
	}
}

func TestUserHandlersOnly(t *testing.T) {
	alice := testUser("alice", func(u *config.User) {
		u.EventHandlers = []config.EventHandler{h("BeforeFileUpload", "deny.lua")}
	})
	e := newEnv(t, map[string]string{"deny.lua": "Session.BlockOperation()\n"}, nil, alice, testUser("bob"))
	if e.engine.Handles(core.BeforeFileUpload, nil) {
		t.Error("Handles(nil user) is true for a user-only handler")
	}
	if err := upload(e.login("alice"), "/f", "x"); !errors.Is(err, core.ErrDenied) {
		t.Errorf("alice's own handler did not run: %v", err)
	}
	must(t, upload(e.login("bob"), "/f", "x"))
}

func TestNoStateLeaksBetweenRuns(t *testing.T) {
	e := newEnv(t, map[string]string{"leak.lua": lines(
		"Log('global=' .. tostring(leaked) .. ' G=' .. tostring(_G.leaked2) .. ' string.x=' .. tostring(string.x))",
		"leaked = 1",
		"_G.leaked2 = 2",
		"Log('set=' .. tostring(leaked) .. ',' .. tostring(_G.leaked) .. ',' .. tostring(leaked2))",
		"local ok = pcall(function() string.x = 1 end)",
		"local ok2 = pcall(function() Log.Info = nil end)",
		"local ok3 = pcall(setmetatable, _G, {})",
		"local ok4 = pcall(function() os.time = nil end)",
		"Log('writes=' .. tostring(ok) .. tostring(ok2) .. tostring(ok3) .. tostring(ok4))")},
		[]config.EventHandler{h("AfterFileUpload", "leak.lua")})
	s := e.login("alice")
	for range 3 {
		must(t, upload(s, "/f", "x"))
	}
	want := []string{"global=nil G=nil string.x=nil", "set=1,1,2", "writes=falsefalsefalsefalse"}
	e.wantLines(append(append(want, want...), want...)...)
}

func TestSandbox(t *testing.T) {
	e := newEnv(t, map[string]string{"sandbox.lua": lines(
		"local forbidden = {'io', 'require', 'dofile', 'loadfile', 'load', 'loadstring', 'debug', 'getfenv',",
		"  'setfenv', 'rawset', 'rawget', 'rawequal', 'getmetatable', 'collectgarbage', 'module', 'newproxy',",
		"  'print', 'package', 'channel', 'coroutine', '_printregs'}",
		"for _, n in ipairs(forbidden) do",
		"  if _G[n] ~= nil then Log('present: ' .. n) end",
		"end",
		"for _, n in ipairs({'execute', 'remove', 'rename', 'exit', 'getenv', 'setenv', 'tmpname'}) do",
		"  if os[n] ~= nil then Log('present: os.' .. n) end",
		"end",
		"if string.dump ~= nil then Log('present: string.dump') end",
		"local function fails(f, ...) local ok, err = pcall(f, ...); if ok then Log('not capped') end; return tostring(err) end",
		"Log('rep: ' .. fails(string.rep, 'x', 2^21))",
		"fails(function() return ('abc'):rep(2^20) end)",
		"fails(string.format, '%999999d', 1)",
		"fails(string.gsub, string.rep('a', 2^19), 'a', 'bbbbbbbb')",
		"fails(string.gsub, string.rep('a', 2^10), 'a', function() return string.rep('c', 2^19) end)",
		"fails(string.gsub, string.rep('a', 2^16), '(a)', '%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1%1')",
		"fails(table.concat, {'a', 'b', 'c'}, string.rep('s', 2^20))",
		"fails(os.date, string.rep('%c', 200))",
		"Log('ok: ' .. #string.rep('ab', 1000) .. ' ' .. string.format('%5.2f|%-3d|%s', 3.14159, 7, 'x'))",
		"Log('gsub: ' .. table.concat({string.gsub('hello world', 'o', '0')}, ',') .. ' ' ..",
		"  string.gsub('hello world', '(%w+)', '<%1>') .. ' ' .. string.gsub('abc', '%w', {a = 'A', b = false}) .. ' ' ..",
		"  string.gsub('abc', '()b', '%1') .. ' ' .. string.gsub('a,b,c', ',', ';', 1) .. ' ' .. string.gsub('x', '', '-') .. ' ' ..",
		"  string.gsub('hello', '^h', 'H') .. ' ' .. string.gsub('abc', '.', function(c) if c == 'b' then return nil end return c:upper() end))",
		"Log('os: ' .. type(os.time()) .. ' ' .. type(os.clock()) .. ' ' .. type(os.date('%Y')) .. ' ' .. type(math.floor))")},
		[]config.EventHandler{h("AfterFileUpload", "sandbox.lua")})
	must(t, upload(e.login("alice"), "/f", "x"))
	e.wantLines(
		"rep: sandbox.lua:11: string.rep: result longer than 1048576 bytes",
		"ok: 2000  3.14|7  |x",
		"gsub: hell0 w0rld,2 <hello> <world> Abc a2c a;b,c -x- Hello AbC",
		"os: number number string function",
	)
}

func TestTimeout(t *testing.T) {
	for _, c := range []struct {
		name, src, onError string
		blocked            bool
	}{
		{"block", "while true do end\n", "block", true},
		{"continue", "while true do end\n", "continue", false},
		{"pcall cannot swallow", "while true do pcall(function() while true do end end) end\n", "block", true},
		{"gsub loop", "local s = string.rep('a', 10000)\nwhile true do s:gsub('a', 'b') end\n", "block", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"loop.lua": c.src},
				[]config.EventHandler{h("BeforeFileUpload", "loop.lua", timeout(100*time.Millisecond), onError(c.onError))})
			s := e.login("alice")
			start := time.Now()
			err := upload(s, "/f.txt", "x")
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("the run took %v", d)
			}
			if c.blocked != errors.Is(err, core.ErrDenied) {
				t.Fatalf("upload after a timed out gate script: %v, want blocked=%v", err, c.blocked)
			}
			// The session survives and serves the next operation.
			if _, err := s.Stat(context.Background(), "/"); err != nil {
				t.Fatalf("next operation: %v", err)
			}
			recs := e.logs.find("event script timed out")
			if len(recs) != 1 {
				e.logs.dump(t)
				t.Fatalf("%d timeout log lines, want 1", len(recs))
			}
			r := recs[0]
			if r.Attrs["session"] != s.ID() || r.Attrs["script"] != "loop.lua" || r.Attrs["line"] == "" ||
				r.Attrs["file"] != filepath.Join(e.dir, "loop.lua") || r.Attrs["timeout"] != "100ms" ||
				!strings.Contains(r.Attrs["err"], "loop.lua:") || !strings.HasSuffix(r.Attrs["err"], "timed out after 100ms") {
				t.Errorf("timeout log attributes: %v", r.Attrs)
			}
		})
	}
}

func TestScriptErrors(t *testing.T) {
	e := newEnv(t, map[string]string{
		"boom.lua":    "local x = 1\nerror('boom')\n",
		"nilcall.lua": "local t = nil\nt.x()\n",
		"exit.lua":    "Exit()\nSession.BlockOperation()\n",
		"pexit.lua":   "pcall(Exit)\nSession.BlockOperation()\n",
	}, []config.EventHandler{
		h("BeforeFileUpload", "boom.lua"),                        // gate, on_error block (default): refused
		h("BeforeDirCreate", "nilcall.lua", onError("continue")), // gate, continue: allowed
		h("AfterDirCreate", "boom.lua"),                          // not a gate: nothing refused
		h("BeforeFileDelete", "exit.lua"),                        // Exit is not an error
		h("BeforeDirDelete", "pexit.lua"),                        // nor can pcall keep the run going
	})
	s := e.login("alice")
	ctx := context.Background()
	if err := upload(s, "/f", "x"); !errors.Is(err, core.ErrDenied) {
		t.Errorf("upload with a failing gate script: %v, want denied", err)
	}
	must(t, s.Mkdir(ctx, "/d"))
	if _, err := s.Stat(ctx, "/d"); err != nil {
		t.Errorf("an error in a non-gate event refused the next operation: %v", err)
	}
	must(t, s.Rmdir(ctx, "/d"))
	e.engine.Fire(ctx, &core.Event{Name: core.BeforeFileDelete, Session: s, Conn: s.Conn()})
	if _, err := s.Stat(ctx, "/"); err != nil {
		t.Errorf("Exit() let the script go on to BlockOperation: %v", err)
	}
	fails := e.logs.find("event script failed")
	if len(fails) != 3 {
		e.logs.dump(t)
		t.Fatalf("%d failure log lines, want 3", len(fails))
	}
	if a := fails[0].Attrs; a["line"] != "2" || a["script"] != "boom.lua" || a["session"] != s.ID() ||
		!strings.Contains(a["err"], "boom.lua:2: boom") || a["on_error"] != "block" {
		t.Errorf("failure log attributes: %v", a)
	}
	if a := fails[1].Attrs; a["line"] != "2" || a["on_error"] != "" {
		t.Errorf("continue failure log attributes: %v", a)
	}
	var seen []string
	for _, a := range e.actions() {
		seen = append(seen, fmt.Sprintf("%s %s %s %v", a.Event, a.Script, a.Name, a.Blocked))
	}
	want := []string{"BeforeFileUpload boom.lua error true", "BeforeDirCreate nilcall.lua error false",
		"AfterDirCreate boom.lua error false", "BeforeDirDelete pexit.lua Exit false", "BeforeFileDelete exit.lua Exit false"}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("observed actions:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

func TestTerminate(t *testing.T) {
	e := newEnv(t, map[string]string{
		"ban.lua":  "if Session.GetUserID() == 'mallory' then\n  Terminate(true)\n  Log('not reached')\nend\n",
		"kick.lua": "if Session.GetUserID() == 'alice' then Terminate(false) end\n",
	}, []config.EventHandler{h("OnAuthSuccess", "ban.lua"), h("OnAuthSuccess", "kick.lua")},
		testUser("alice"), testUser("mallory"))
	ctx := context.Background()
	connectFrom := func(ip string) (*core.Session, error) {
		return e.site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}, Protocol: core.ProtoFTP})
	}
	s, err := connectFrom("198.51.100.7")
	must(t, err)
	defer s.Close()
	_ = s.AuthPassword(ctx, "mallory", "pw")
	if s.Context().Err() == nil {
		t.Fatal("Terminate(true) did not end the session")
	}
	if _, err := connectFrom("198.51.100.7"); !errors.Is(err, core.ErrRefused) {
		t.Fatalf("connect after Terminate(true): %v, want refused (banned)", err)
	}
	s2, err := connectFrom("198.51.100.8")
	must(t, err)
	defer s2.Close()
	_ = s2.AuthPassword(ctx, "alice", "pw")
	if s2.Context().Err() == nil {
		t.Fatal("Terminate(false) did not end the session")
	}
	s3, err := connectFrom("198.51.100.8")
	if err != nil {
		t.Fatalf("Terminate(false) banned the address: %v", err)
	}
	s3.Close()
	if len(e.logs.find("not reached")) != 0 {
		t.Error("the script went on after Terminate")
	}
}

func TestConnEvents(t *testing.T) {
	e := newEnv(t, map[string]string{
		"conn.lua": lines(
			"assert(Session == nil)",
			"Log(Conn.GetRemoteAddress() .. ' ' .. Conn:GetProtocol() .. ' ' .. Conn.GetVirtualSite() .. ' ' .. EventHandler())",
			"if Conn:GetRemoteAddress() == '203.0.113.9' then Conn.Reject() end"),
		"id.lua":  "Conn:SetSoftwareID('SSH-2.0-Custom_' .. Conn.GetRemoteAddress())\n",
		"hit.lua": "Log('hit ' .. Conn.GetRemoteAddress() .. ' session=' .. tostring(Session))\n",
		"add.lua": "Log('add ' .. Conn.GetRemoteAddress() .. ' session=' .. tostring(Session ~= nil))\n",
	}, []config.EventHandler{h("OnNewConnection", "conn.lua"), h("BeforeSendSoftwareID", "id.lua"),
		h("OnBlocklistHit", "hit.lua"), h("OnBlocklistAdd", "add.lua")})
	ctx := context.Background()
	connect := func(ip string) (*core.Session, error) {
		return e.site.Connect(ctx, core.ConnInfo{Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}, Protocol: core.ProtoFTPS})
	}
	if _, err := connect("203.0.113.9"); !errors.Is(err, core.ErrRefused) {
		t.Fatalf("rejected connection: %v", err)
	}
	s, err := connect("203.0.113.10")
	must(t, err)
	defer s.Close()
	if id := e.site.SoftwareID(ctx, s, "SSH-2.0-wharf"); id != "SSH-2.0-Custom_203.0.113.10" {
		t.Errorf("software id %q", id)
	}
	e.site.Ban(ctx, s.RemoteIP(), time.Minute, s)
	if _, err := connect("203.0.113.10"); !errors.Is(err, core.ErrRefused) {
		t.Fatalf("banned address connected: %v", err)
	}
	e.wantLines("203.0.113.9 FTPS test OnNewConnection", "203.0.113.10 FTPS test OnNewConnection",
		"add 203.0.113.10 session=true", "hit 203.0.113.10 session=nil")
}

func TestReload(t *testing.T) {
	e := newEnv(t, map[string]string{"v1.lua": "Log('v1')\n", "v2.lua": "Log('v2')\n", "bad.lua": "Log(\n"},
		[]config.EventHandler{h("OnAuthSuccess", "v1.lua")})
	e.login("alice")
	next := *e.cfg
	next.EventHandlers = []config.EventHandler{h("OnAuthSuccess", "v2.lua"), h("AfterFileUpload", "v2.lua")}
	must(t, e.engine.Reload(&next))
	must(t, upload(e.login("alice"), "/f", "x"))
	bad := next
	bad.EventHandlers = []config.EventHandler{h("OnAuthSuccess", "bad.lua")}
	var le *scripting.LoadError
	if err := e.engine.Reload(&bad); !errors.As(err, &le) || le.Scripts[0].Line != 2 {
		t.Fatalf("reload with a syntax error: %v", err)
	}
	e.login("alice") // still v2
	e.wantLines("v1", "v2", "v2", "v2")
}

// TestConcurrentSessions runs many sessions at once on a small pool (run with -race).
func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t, map[string]string{"count.lua": "Session.AddCustomData(CtxRelPath())\nlocal n = 0\nfor i = 1, 1000 do n = n + i end\n"},
		[]config.EventHandler{h("AfterFileUpload", "count.lua")})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := e.login("alice")
			for j := range 10 {
				if err := upload(s, "/f"+string(rune('a'+i))+string(rune('a'+j)), "x"); err != nil {
					errs <- err
					return
				}
			}
			if n := len(s.AllCustomData()); n != 10 {
				errs <- errors.New("custom data lost")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClosedEngineRefusesGates(t *testing.T) {
	e := newEnv(t, map[string]string{"ok.lua": "Log('ran')\n"}, []config.EventHandler{h("BeforeFileUpload", "ok.lua")})
	s := e.login("alice")
	must(t, e.engine.Close())
	if err := upload(s, "/f", "x"); !errors.Is(err, core.ErrDenied) {
		t.Fatalf("upload after Close: %v, want denied", err)
	}
}

// A session that logged in before a reload keeps its user, whose handler list the new load
// was not compiled from: the engine compiles it on first sight. The catch-all profile's
// handlers apply to script-authenticated logins.
func TestUserHandlersAfterReloadAndCatchAll(t *testing.T) {
	withHandler := func(id, script string) config.User {
		return testUser(id, func(u *config.User) {
			u.EventHandlers = []config.EventHandler{h("AfterFileUpload", script)}
		})
	}
	e := newEnv(t, map[string]string{"old.lua": "Log('old ' .. Session.GetUserID())\n", "new.lua": "Log('new ' .. Session.GetUserID())\n",
		"accept.lua": "Session.AuthenticateUserFromScript()\n"},
		[]config.EventHandler{h("OnAuthPassword", "accept.lua")},
		withHandler("alice", "old.lua"), withHandler("*", "old.lua"))
	before := e.login("alice")
	next := *e.cfg
	next.Users = []config.User{withHandler("alice", "new.lua"), withHandler("*", "new.lua")}
	must(t, e.engine.Reload(&next))
	must(t, upload(before, "/a", "x"))
	ext := e.connect("192.0.2.10", core.ProtoSFTP)
	must(t, ext.AuthPassword(context.Background(), "ext", "any"))
	must(t, upload(ext, "/b", "x"))
	e.wantLines("old alice", "old ext")
}
