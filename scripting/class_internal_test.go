package scripting

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// counter is the value of the test class Counter: a number that Add(x) raises by x × Step.
type counter struct {
	n, step float64
	name    string
}

// counterSnap is the value of CounterSnap, which only Counter's Snapshot() makes.
var counterSnap = &hostClass{name: "CounterSnap",
	methods: map[string]classMethod{
		"Ok": func(_ *vm, L *lua.LState, _ *instance, _ int) int { L.Push(lua.LTrue); return 1 },
		"Value": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			L.Push(lua.LNumber(self.Value.(float64)))
			return 1
		},
	}}

// counterClass is a host class of the tests' own: a constructor with arguments, a fluent
// method, methods returning a value, a list, nothing and another class's instance, a
// settable field and a read-only one.
var counterClass = &hostClass{name: "Counter",
	construct: func(_ *vm, L *lua.LState, a int) any {
		c := &counter{n: float64(L.CheckNumber(a)), step: 1, name: "counter"}
		if s, ok := L.Get(a + 1).(lua.LString); ok {
			c.name = string(s)
		}
		return c
	},
	methods: map[string]classMethod{
		"Add": func(_ *vm, L *lua.LState, self *instance, a int) int {
			c := self.Value.(*counter)
			c.n += float64(L.CheckNumber(a)) * c.step
			L.Push(self.ud)
			return 1
		},
		"Value": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			L.Push(lua.LNumber(self.Value.(*counter).n))
			return 1
		},
		"Items": func(_ *vm, L *lua.LState, self *instance, _ int) int {
			t := L.CreateTable(3, 0)
			for i := 1; i <= 3; i++ {
				t.Append(lua.LNumber(self.Value.(*counter).n + float64(i)))
			}
			L.Push(t)
			return 1
		},
		"Nothing": func(*vm, *lua.LState, *instance, int) int { return 0 },
		"Snapshot": func(v *vm, L *lua.LState, self *instance, _ int) int {
			L.Push(v.newInstance(counterSnap, self.Value.(*counter).n))
			return 1
		},
	},
	fields: map[string]classField{
		"Step": {
			get: func(_ *vm, _ *lua.LState, self *instance) lua.LValue { return lua.LNumber(self.Value.(*counter).step) },
			set: func(_ *vm, L *lua.LState, self *instance, val lua.LValue) {
				if isNullish(val) {
					self.Value.(*counter).step = 1 // nil, undefined or null: the default
					return
				}
				n, ok := val.(lua.LNumber)
				if !ok {
					L.RaiseError("Counter.Step: a number, not %s", val.Type().String())
				}
				self.Value.(*counter).step = float64(n)
			},
		},
		"Name": {get: func(_ *vm, _ *lua.LState, self *instance) lua.LValue { return lua.LString(self.Value.(*counter).name) }},
	}}

// lineSink keeps the messages of the scripts' log lines and of the engine's errors.
type lineSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *lineSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *lineSink) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			msg += ": " + a.Value.String()
		}
		return true
	})
	s.mu.Lock()
	s.lines = append(s.lines, msg)
	s.mu.Unlock()
	return nil
}
func (s *lineSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *lineSink) WithGroup(string) slog.Handler      { return s }

// runWithClasses runs scripts (one BeforeFileUpload handler each, in order) with extra host
// classes installed, and returns the lines they logged.
func runWithClasses(t *testing.T, classes []*hostClass, scripts ...[2]string) []string {
	t.Helper()
	dir := t.TempDir()
	var hs []config.EventHandler
	for i, sc := range scripts {
		if err := os.WriteFile(filepath.Join(dir, sc[0]), []byte(sc[1]), 0o600); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, config.EventHandler{Event: "BeforeFileUpload", Script: sc[0], Priority: i, OnError: "continue"})
	}
	cfg := &config.Site{Name: "s", ScriptsDir: dir, EventHandlers: hs,
		VFS:   []config.VFS{{Name: "mem", Type: "memory"}},
		Users: []config.User{{ID: "alice", Password: "plain:pw", Home: config.Mount{VFS: "mem", Permissions: []string{"all"}}}}}
	sink := &lineSink{}
	eng, err := New(cfg, Options{Logger: slog.New(sink), PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	eng.classes = classes
	// Scripts log through the session's logger, which the site makes.
	site, err := core.NewSite(cfg, core.Options{Logger: slog.New(sink), Events: eng})
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
	sink.mu.Lock()
	sink.lines = nil // the site's own lines (connection)
	sink.mu.Unlock()
	eng.Fire(ctx, &core.Event{Name: core.BeforeFileUpload, Session: s, Conn: s.Conn(), RelPath: "/a"})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	return slices.Clone(sink.lines)
}

func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A host class is constructed from Lua as X(…), X.new(…) and X:new(…); its methods work
// with and without self and chain; its fields read, set and refuse as the class says.
func TestHostClassFromLua(t *testing.T) {
	got := runWithClasses(t, []*hostClass{counterClass, counterSnap}, [2]string{"c.lua", `
local c = Counter.new(5)
c:Add(1):Add(2)
c.Add(3)
Log(c:Value(), Counter(10).Value(), Counter:new(7, 'seven').Name)
c.Step = 10
c.Add(1)
Log(c.Value(), c.Step, c.Name, tostring(c), tostring(Counter))
c.Step = nil
Log(c:Snapshot():Value(), #c:Items(), c.Nothing() == nil, c.Missing == nil, c.Step)
local ok, err = pcall(function() c.Name = 'x' end) Log(ok, err)
ok, err = pcall(function() c.Nope = 1 end) Log(ok, err)
ok, err = pcall(function() c.Step = 'x' end) Log(ok, err)
ok, err = pcall(function() Counter.new = nil end) Log(ok, err)
ok, err = pcall(function() return Counter('x') end) Log(ok, err)
Log(CounterSnap)
`})
	want := []string{"11 10 seven", "21 10 counter Counter Counter", "21 3 true true 1"}
	want = append(want,
		"false c.lua:11: Counter.Name is read-only",
		"false c.lua:12: Counter has no field Nope",
		"false c.lua:13: Counter.Step: a number, not string",
		"false c.lua:14: Counter is read-only",
		"false c.lua:15: bad argument #2 to Counter (number expected, got string)",
		"nil")
	wantLines(t, got, want...)
}

// From JavaScript, new X(…) constructs a host class, with fluent chains, settable fields,
// and results adapted as for wharf's objects; what is not a class is refused by name.
func TestHostClassFromJS(t *testing.T) {
	got := runWithClasses(t, []*hostClass{counterClass, counterSnap}, [2]string{"c.js", `
var c = new Counter(5).Add(1).Add(2);
c.Step = 3;
c.Add(1);
Log(c.Value(), c.Step, c.Name, typeof Counter, typeof c, String(c));
c.Step = null;
Log(c.Step);
var s = c.Snapshot();
Log(s.Ok(), s.Value(), c.Items().length, c.Items().join('-'), c.Nothing() === null);
Log(new Counter(1, 'one').Name, Counter(2).Value());
try { c.Name = 'x'; } catch (e) { Log(e.message); }
try { c.Step = 'x'; } catch (e) { Log(e.message); }
try { new CounterSnap(); } catch (e) { Log(e.name + ': ' + e.message); }
try { new CtxRelPath(); } catch (e) { Log(e.name + ': ' + e.message); }
try { new Counter('x'); } catch (e) { Log(e.name); }
`})
	wantLines(t, got,
		"11 3 counter function object Counter",
		"1",
		"true 11 3 12-13-14 true",
		"one 2",
		"Counter.Name is read-only",
		"Counter.Step: a number, not string",
		"ReferenceError: CounterSnap is not defined",
		"TypeError: CtxRelPath is not a constructor",
		"Error")
}
