package scripting_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
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
	{"regex-check", "BeforeFileUpload", `
if (/\.(exe|bat|cmd|scr)$/i.test(CtxRelPath())) {
  Log.Warn('blocked upload of ' + CtxRelPath());
  Session.BlockOperation();
}
`, `
local p = string.lower(CtxRelPath())
for _, ext in ipairs({"%.exe$", "%.bat$", "%.cmd$", "%.scr$"}) do
  if p:find(ext) then
    Log.Warn('blocked upload of ' .. CtxRelPath())
    Session.BlockOperation()
    break
  end
end
`},
}

// regexCalls is how many regular expression tests BenchmarkRegexTest's script makes per event.
const regexCalls = 1000

// BenchmarkRegexTest measures one /\.exe$/i.test(name) from a script: an event whose
// handler makes regexCalls of them (each evaluation of the literal makes a new RegExp, as in
// JavaScript), less an event whose handler runs the same loop without the test. It reports
// ns/test.
func BenchmarkRegexTest(b *testing.B) {
	loop := func(body string) string {
		return "var name = CtxRelPath(), n = 0;\nfor (var i = 0; i < " + strconv.Itoa(regexCalls) + "; i++) { " + body + " }\n" +
			"if (n < 0) Log(n);\n"
	}
	var base float64
	for _, c := range []struct{ name, body string }{
		{"loop-only", "if (name.length > 0) n++;"},
		{"literal", "if (/\\.exe$/i.test(name)) n++;"},
		{"compiled-once", "if (re.test(name)) n++;"},
	} {
		b.Run(c.name, func(b *testing.B) {
			src := loop(c.body)
			if c.name == "compiled-once" {
				src = "var re = /\\.exe$/i;\n" + src
			}
			benchHandler(b, "BeforeFileUpload", "r.js", src)
			perEvent := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if c.name == "loop-only" {
				base = perEvent
				return
			}
			b.ReportMetric((perEvent-base)/regexCalls, "ns/test")
		})
	}
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
	eng, s := benchSession(b, map[string]string{script: src}, []config.EventHandler{{Event: event, Script: script}})
	ctx := context.Background()
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
