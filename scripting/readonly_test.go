package scripting_test

import (
	"testing"

	"github.com/wharf-project/wharf/core/config"
)

// The tables every run shares (the libraries, _G, Log, Date, the JavaScript runtime) cannot
// be changed by a run, not even through the table library, which writes without metamethods:
// one user's run leaves nothing in them for another user's run on the same Lua state.
func TestSharedTablesReadOnlyForTableLibrary(t *testing.T) {
	src := lines(
		"local targets = {",
		"  {'string', string}, {'table', table}, {'math', math}, {'os', os}, {'_G', _G}, {'Log', Log},",
		"  {'Date', Date}, {'__jsrt', __jsrt}, {'__jsrt.null', __jsrt.null}, {'__jsrt.Math', __jsrt.Math},",
		"  {'__jsrt.JSON', __jsrt.JSON}, {'__jsrt.S', __jsrt.S},",
		"}",
		"if Session.GetUserID() == 'alice' then",
		"  for _, tg in ipairs(targets) do",
		"    local name, t = tg[1], tg[2]",
		"    local attempts = {",
		"      function() table.insert(t, 'leak') end,",
		"      function() table.insert(t, 1, 'leak') end,",
		"      function() table.remove(t) end,",
		"      function() table.remove(t, 1) end,",
		"      function() table.sort(t) end,",
		"      function() setmetatable(t, {}) end,",
		// The JavaScript runtime's helpers, which keep rawset and setmetatable.
		"      function() __jsrt.A(t, 0) end,",
		"      function() __jsrt.O({'k'}, t) end,",
		"    }",
		"    if name ~= '_G' then", // _G[1] = x is a global of the run: allowed
		"      attempts[#attempts + 1] = function() t[1] = 'leak' end",
		"      attempts[#attempts + 1] = function() t.leak = 'leak' end",
		"      attempts[#attempts + 1] = function() __jsrt.set(t, 'leak', 1) end",
		"    end",
		"    local done = {}",
		"    for i, f in ipairs(attempts) do",
		"      local ok, err = pcall(f)",
		"      if ok then done[#done + 1] = tostring(i) end",
		"    end",
		"    Log(name .. ' writes=' .. table.concat(done, ','))",
		"  end",
		"  local ok, err = pcall(table.insert, string, 'x')",
		"  Log('error: ' .. tostring(err))",
		"else",
		"  for _, tg in ipairs(targets) do",
		"    Log(tg[1] .. ' next=' .. tostring(next(tg[2])) .. ' len=' .. #tg[2])",
		"  end",
		"end",
	)
	cfg, root := newConfig(t, map[string]string{"leak.lua": src}, []config.EventHandler{h("BeforeFileUpload", "leak.lua")},
		testUser("alice"), testUser("bob"))
	e := buildEnvPool(t, cfg, root, 1) // one Lua state: bob's run reuses alice's
	must(t, upload(e.login("alice"), "/f", "x"))
	names := []string{"string", "table", "math", "os", "_G", "Log", "Date", "__jsrt", "__jsrt.null", "__jsrt.Math",
		"__jsrt.JSON", "__jsrt.S"}
	var want []string
	for _, n := range names {
		want = append(want, n+" writes=")
	}
	want = append(want, "error: leak.lua:31: table.insert: attempt to modify a read-only table")
	e.wantLines(want...)
	e.logs.reset()
	must(t, upload(e.login("bob"), "/f", "x"))
	want = want[:0]
	for _, n := range names {
		want = append(want, n+" next=nil len=0")
	}
	e.wantLines(want...)
}
