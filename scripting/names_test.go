package scripting_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting"
)

// loadErrors builds an engine for scripts attached to OnAuthSuccess and returns its load
// problems, one line each.
func loadErrors(t *testing.T, scripts map[string]string) []string {
	t.Helper()
	var hs []config.EventHandler
	for name := range scripts {
		hs = append(hs, h("OnAuthSuccess", name))
	}
	cfg, _ := newConfig(t, scripts, hs)
	_, err := scripting.New(cfg, scripting.Options{})
	if err == nil {
		return nil
	}
	var le *scripting.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("not a LoadError: %v", err)
	}
	var out []string
	for _, s := range le.Scripts {
		out = append(out, filepath.Base(s.File)+":"+strings.SplitN(s.Error(), filepath.Base(s.File)+":", 2)[1])
	}
	slices.Sort(out)
	return out
}

// TestSyncplifyNamesRefused: scripts that use Syncplify names wharf does not implement are
// refused when they load, each use by name with its line and column, in Lua and in JS; the
// names wharf has, and a script's own globals of the same name, load.
func TestSyncplifyNamesRefused(t *testing.T) {
	lua := lines(
		"local ok = GetSecret('x') -- implemented",
		"local c = SftpClient()",
		"if Session.ClientIP == '1' then AddToLog('x') end",
		"local m = NeverOverwrite; local n = NeverOverwrite",
		"function Lowercase(s) return string.lower(s) end -- the script's own",
		"Log(Lowercase('A') .. SortByTime .. Session:GetID())",
		"local f = function() return VfsTypeS3 end",
	)
	js := strings.Join([]string{
		"{",
		"  var vfs = new VirtualFS(VfsTypeDisk, '/x');",
		"  if (Session.ReqPassword) {",
		"    var t = TLS_MODE_EXPLICIT;",
		"  }",
		"  function ExtractFileExt(p) { return p; }",
		"  Log(ExtractFileExt('a') + LIST_ALL);",
		"}",
	}, "\n")
	got := loadErrors(t, map[string]string{"a.lua": lua, "b.js": js, "c.js": "var cli = new SftpClient();\n",
		"ok.js": "{ var r = GetCurrentVFS().ReadDir('/', SortByTime, SortDesc); Sleep(1); Log(GetSecret('a')); }"})
	want := []string{
		"a.lua:2:11: SftpClient is a Syncplify class (v7.0.16+) that wharf does not implement; no outbound clients; copy to a VirtualFS instead (handler of site test)",
		"a.lua:3:12: Session.ClientIP is a Syncplify Session member (v4/v5) that wharf does not implement; Session.GetRemoteAddress() (handler of site test)",
		"a.lua:3:33: AddToLog is a Syncplify function (v4/v5) that wharf does not implement; Log() (handler of site test)",
		"a.lua:4:11: NeverOverwrite is a Syncplify constant (v7.0.16+) that wharf does not implement; outbound clients only (handler of site test)",
		"a.lua:7:29: VfsTypeS3 is a Syncplify constant (v7) that wharf does not implement; wharf has disk and memory backends (handler of site test)",
		"b.js:3:15: Session.ReqPassword is a Syncplify Session member (v4/v5) that wharf does not implement; scripts are not given passwords (handler of site test)",
		"b.js:4:13: TLS_MODE_EXPLICIT is a Syncplify constant (v7.0.16+) that wharf does not implement; outbound clients only (handler of site test)",
		"b.js:7:29: LIST_ALL is a Syncplify constant (v7.0.16+) that wharf does not implement; outbound clients only (handler of site test)",
		"c.js:1:15: SftpClient is a Syncplify class (v7.0.16+) that wharf does not implement; no outbound clients; copy to a VirtualFS instead (handler of site test)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSyncplifyNamesFollowTheEngine: a name's status is what the engine defines, not a list
// kept by hand: every name the table calls implemented is a value in a script's environment
// (or a Session method), and every other one is nil there.
func TestSyncplifyNamesFollowTheEngine(t *testing.T) {
	var members, globals []string
	for _, n := range scripting.SyncplifyNames {
		if n.Kind == scripting.KindMember {
			members = append(members, "'"+n.Name+"'")
		} else {
			globals = append(globals, "'"+n.Name+"'")
		}
	}
	// _G[k] and Session[k] reach the names without naming them, so the probe loads.
	probe := []string{
		"for _, k in ipairs({" + strings.Join(globals, ", ") + "}) do Log(k .. '=' .. tostring(_G[k] ~= nil)) end",
		"for _, k in ipairs({" + strings.Join(members, ", ") + "}) do Log('Session.' .. k .. '=' .. tostring(Session[k] ~= nil)) end",
	}
	e := newEnv(t, map[string]string{"probe.lua": lines(probe...)}, []config.EventHandler{h("OnAuthSuccess", "probe.lua")})
	e.login("alice")
	got := e.kv()
	for _, n := range scripting.SyncplifyNames {
		key := n.Name
		if n.Kind == scripting.KindMember {
			key = "Session." + n.Name
		}
		if want := n.Implemented(); got[key] != map[bool]string{true: "true", false: "false"}[want] {
			t.Errorf("%s: in the environment %s, Implemented() %v", key, got[key], want)
		}
	}
}

// TestNamesTableInDocs keeps docs/scripting.md's table of Syncplify names true: it is the
// table NamesTable makes. WHARF_UPDATE_DOCS=1 rewrites it.
func TestNamesTableInDocs(t *testing.T) {
	const file = "../docs/scripting.md"
	const begin, end = "<!-- syncplify-names: begin (generated by TestNamesTableInDocs) -->\n", "<!-- syncplify-names: end -->\n"
	doc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q … %q section", file, begin, end)
	}
	table := scripting.NamesTable()
	if text[i+len(begin):j] == table {
		return
	}
	if os.Getenv("WHARF_UPDATE_DOCS") == "1" {
		text = text[:i+len(begin)] + table + text[j:]
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the table of Syncplify names in %s is stale; run WHARF_UPDATE_DOCS=1 go test ./scripting -run TestNamesTableInDocs", file)
}
