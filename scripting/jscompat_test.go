package scripting_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/core/coretest"
	"github.com/wharf-project/wharf/scripting"
)

// docExampleJS is the Session example of the Syncplify documentation, unmodified.
const docExampleJS = `{
  if (Session) {
    var sid = Session.GetID();
    var uname = Session.GetUserID();
    Log('User ' + uname + ' connected with session ID ' + sid);
  } else {
    Log('Session object is not available.');
  }
}
`

func TestE2EDocExampleJS(t *testing.T) {
	e := newEnv(t, map[string]string{"log.js": docExampleJS}, []config.EventHandler{h("OnAuthSuccess", "log.js")})
	for _, p := range protocols {
		p.dial(t, e, "alice", "pw").close()
	}
	re := regexp.MustCompile(`^User alice connected with session ID (\S+)$`)
	coretest.Eventually(t, 5*time.Second, "two login lines", func() bool { return len(e.logs.find("connected with session ID")) == 2 })
	var protos []string
	for _, r := range e.logs.find("connected with session ID") {
		m := re.FindStringSubmatch(r.Msg)
		if m == nil || m[1] != r.Attrs["session"] {
			t.Errorf("log line %q (session %s)", r.Msg, r.Attrs["session"])
		}
		protos = append(protos, r.Attrs["protocol"])
	}
	sort.Strings(protos)
	if strings.Join(protos, ",") != "FTP,SFTP" {
		t.Errorf("protocols logged: %v", protos)
	}
}

// The example's else branch: Session is null before the session exists.
func TestJSNoSession(t *testing.T) {
	e := newEnv(t, map[string]string{"log.js": docExampleJS}, []config.EventHandler{h("OnNewConnection", "log.js")})
	e.connect("192.0.2.10", core.ProtoSFTP)
	e.wantLines("Session object is not available.")
}

// testdata/config/full.yaml's deny-exe.js, over both protocols.
func TestE2EDenyExeJS(t *testing.T) {
	src, err := os.ReadFile("../testdata/config/scripts/deny-exe.js")
	must(t, err)
	e := newEnv(t, map[string]string{"deny-exe.js": string(src)}, []config.EventHandler{h("BeforeFileUpload", "deny-exe.js")})
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c := p.dial(t, e, "alice", "pw")
			defer c.close()
			if err := c.upload("/x.exe", []byte("MZ")); err == nil {
				t.Error("x.exe accepted")
			}
			must(t, c.upload("/x.txt", []byte("text")))
		})
	}
}

// JS scripts see the same objects as Lua ones: custom data as arrays, User, Dates.
func TestJSObjects(t *testing.T) {
	e := newEnv(t, map[string]string{
		"set.js": "Session.AddCustomData('one'); Session.AddCustomData('two');\n",
		"get.js": lines(
			"var all = Session.GetAllCustomData();",
			"Log('n=' + all.length + ' ' + all.join('|') + ' first=' + all[0] + ' ' + Array.isArray(all));",
			"var u = Session.GetUser();",
			"Log('user=' + u.GetID() + ' subsystems=' + u.Subsystems.length + ' ' + (u.Subsystems.indexOf('SFTP') >= 0));",
			"Log('email=' + u.EMail);",
			"var start = Session.GetStartTime();",
			"Log('date=' + (typeof start.getTime()) + ' ' + (Date.now() - start.getTime() >= 0));",
			"Log('lastErr=' + (Session.GetLastErrorTime() === null));",
			"Log('proto=' + Session.GetProtocol().toLowerCase());",
		)},
		[]config.EventHandler{h("OnAuthSuccess", "set.js"), h("BeforeFileUpload", "get.js")})
	s := e.login("alice")
	must(t, upload(s, "/f.txt", "x"))
	e.wantLines("n=2 one|two first=one true", "user=alice subsystems=5 true", "email=alice@example.com",
		"date=number true", "lastErr=true", "proto=sftp")
}

// An uncaught exception fails the run like a Lua error, logged with the script's line.
func TestJSUncaughtException(t *testing.T) {
	e := newEnv(t, map[string]string{"boom.js": "var x = 1;\n\nthrow new Error('boom ' + x);\n"},
		[]config.EventHandler{h("BeforeFileUpload", "boom.js")})
	s := e.login("alice")
	if err := upload(s, "/a.txt", "x"); !errors.Is(err, core.ErrDenied) {
		t.Fatalf("upload: %v, want denied (on_error block)", err)
	}
	rs := e.logs.find("event script failed")
	if len(rs) != 1 || rs[0].Attrs["err"] != "boom.js:3: uncaught exception: Error: boom 1" || rs[0].Attrs["line"] != "3" {
		e.logs.dump(t)
		t.Fatalf("failure log: %+v", rs)
	}
}

// A run-time error names the script's own line: the generated Lua keeps statements on their
// source lines.
func TestJSRuntimeErrorLine(t *testing.T) {
	e := newEnv(t, map[string]string{"bad.js": "var a = 1;\nvar b = 2;\n\nnotAFunction(a, b);\n"},
		[]config.EventHandler{h("BeforeFileUpload", "bad.js", onError("continue"))})
	s := e.login("alice")
	must(t, upload(s, "/a.txt", "x"))
	rs := e.logs.find("event script failed")
	if len(rs) != 1 || rs[0].Attrs["line"] != "4" || !strings.HasPrefix(rs[0].Attrs["err"], "bad.js:4:") {
		e.logs.dump(t)
		t.Fatalf("failure log: %+v", rs)
	}
}

// Unsupported constructs and syntax errors are load errors with the line and column.
func TestJSLoadErrors(t *testing.T) {
	dir := t.TempDir()
	scripts := map[string]string{
		"class.js":  "var a = 1;\n  class A {}\n",
		"syntax.js": "var x = (;\n",
		"regex.js":  "var ok = true;\nvar r = /a+(/;\n",
	}
	var hs []config.EventHandler
	for _, n := range []string{"class.js", "syntax.js", "regex.js"} {
		must(t, os.WriteFile(filepath.Join(dir, n), []byte(scripts[n]), 0o600))
		hs = append(hs, h("OnAuthSuccess", n))
	}
	_, err := scripting.New(&config.Site{Name: "s", ScriptsDir: dir, EventHandlers: hs}, scripting.Options{})
	var le *scripting.LoadError
	if !errors.As(err, &le) || len(le.Scripts) != 3 {
		t.Fatalf("New: %v, want 3 problems", err)
	}
	for i, want := range []string{
		filepath.Join(dir, "class.js") + ":2:3: unsupported: class declaration (handler of site s)",
		filepath.Join(dir, "syntax.js") + ":1:10: unexpected ; in expression (handler of site s)",
		filepath.Join(dir, "regex.js") + ":2:9: invalid regular expression: /a+(/: missing closing ) (handler of site s)",
	} {
		if got := le.Scripts[i].Error(); got != want {
			t.Errorf("problem %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestTranslateJS(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "x.js")
	must(t, os.WriteFile(file, []byte("Log('a' + 'b');\n"), 0o600))
	code, err := scripting.TranslateJS(file)
	if err != nil || !strings.Contains(code, `Log(("a" .. "b"))`) {
		t.Fatalf("TranslateJS: %v\n%s", err, code)
	}
	if _, err := scripting.TranslateJS(filepath.Join(dir, "missing.js")); err == nil {
		t.Fatal("a missing file translates")
	}
	_ = context.Background
}

// Runs share nothing: a global a JS run sets is gone in the next run, and neither JS nor Lua
// scripts can change the JS runtime that all runs share.
func TestJSRunsDoNotLeak(t *testing.T) {
	e := newEnv(t, map[string]string{
		"a.js": lines(
			"Log('seen=' + typeof leaked);",
			"leaked = 'x';",
			"try { Math.floor = null; } catch (err) { Log('Math: ' + (err.message.indexOf('read-only') >= 0)); }",
		),
		"b.lua": lines(
			"local ok = pcall(function() __jsrt.str = nil end)",
			"Log('runtime writable=' .. tostring(ok))",
		)},
		[]config.EventHandler{h("BeforeFileUpload", "a.js"), h("BeforeFileUpload", "b.lua")})
	s := e.login("alice")
	must(t, upload(s, "/1", "x"))
	must(t, upload(s, "/2", "x"))
	e.wantLines("seen=undefined", "Math: true", "runtime writable=false", "seen=undefined", "Math: true", "runtime writable=false")
}
