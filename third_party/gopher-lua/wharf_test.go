package lua

// Tests of wharf's changes (see WHARF.md).

import (
	"strings"
	"testing"
)

// runLua runs src in a fresh state prepared by setup and returns the error text, "" if none.
func runLua(t *testing.T, setup func(L *LState), src string) string {
	t.Helper()
	L := NewState()
	defer L.Close()
	if setup != nil {
		setup(L)
	}
	if err := L.DoString(src); err != nil {
		return err.Error()
	}
	return ""
}

func TestReadOnlyTable(t *testing.T) {
	setup := func(L *LState) {
		ro := L.NewTable()
		ro.RawSetInt(1, LString("one"))
		ro.RawSetString("k", LString("v"))
		ro.SetReadOnly(true)
		ro.RawSetString("go", LTrue) // Go code is not checked
		L.SetGlobal("ro", ro)

		// A read-only proxy whose writes go to a __newindex function keeps working.
		store := L.NewTable()
		proxy := L.NewTable()
		mt := L.NewTable()
		mt.RawSetString("__newindex", store)
		mt.RawSetString("__index", store)
		proxy.Metatable = mt
		proxy.SetReadOnly(true)
		L.SetGlobal("proxy", proxy)
		L.SetGlobal("store", store)
	}
	for _, src := range []string{
		"ro[1] = 'x'", "ro.k = 'x'", "ro.new = 'x'", "ro[2] = 'x'", "ro[{}] = 1",
		"rawset(ro, 'new', 1)", "setmetatable(ro, {})",
		"table.insert(ro, 'x')", "table.insert(ro, 1, 'x')", "table.remove(ro)", "table.remove(ro, 1)", "table.sort(ro)",
		"local t = setmetatable({}, {__newindex = ro}); t.x = 1",
	} {
		if err := runLua(t, setup, src); !strings.Contains(err, "attempt to modify a read-only table") {
			t.Errorf("%s: error %q, want a read-only error", src, err)
		}
	}
	if err := runLua(t, setup, `
		assert(ro[1] == 'one' and ro.k == 'v' and ro.go == true and #ro == 1)
		for k, v in pairs(ro) do assert(k ~= nil) end
		assert(table.concat(ro, ',') == 'one')
		proxy.x = 1
		assert(store.x == 1 and proxy.x == 1 and rawget(proxy, 'x') == nil)
		local t = {}
		table.insert(t, 1); t.y = 2; rawset(t, 'z', 3); setmetatable(t, {})
	`); err != "" {
		t.Errorf("reads and writes elsewhere: %s", err)
	}
}
