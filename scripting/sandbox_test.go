package scripting_test

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// heapUse runs f and reports how much the process allocated meanwhile and the highest heap
// in use it saw (sampled), both relative to before. The collector runs at a quarter of the
// usual heap growth meanwhile, so that the peak is about what f keeps live, not how much
// garbage a busy machine (the race detector, other packages' tests) let pile up before the
// next collection: the budgets bound live memory.
func heapUse(f func()) (allocated, peak uint64) {
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var top atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > top.Load() {
				top.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if after.HeapAlloc > top.Load() {
		top.Store(after.HeapAlloc)
	}
	return after.TotalAlloc - before.TotalAlloc, top.Load() - min(top.Load(), before.HeapAlloc)
}

const mib = 1 << 20

// A run cannot hold more than its memory budget, nor one library call make more than 1 MiB:
// each attack ends with a script error well inside the timeout, and the process heap stays
// within a small multiple of the budget.
func TestMemoryBudget(t *testing.T) {
	const budget = 64 * mib // the default max_memory
	for _, c := range []struct {
		name, src, err string
	}{
		// The documented bomb (bounded here at 512 MiB, so that a build without a budget
		// fails the test instead of exhausting the machine).
		{"concat doubling", "local s = 'x'\nfor i = 1, 29 do s = s .. s end\n", "memory budget exceeded"},
		{"many 1 MiB strings", "local t = {}\nfor i = 1, 300 do t[i] = string.rep(string.char(65 + i % 26), mib - 8) .. string.format('%08d', i) end\n",
			"memory budget exceeded"},
		{"table.concat 400 x 1 MiB", "local s = string.rep('x', mib)\nlocal t = {}\nfor i = 1, 400 do t[i] = s end\nlocal r = table.concat(t)\n",
			"table.concat: result longer than 1048576 bytes"},
		{"string.format many %s", "local s = string.rep('x', mib)\nlocal t = {}\nfor i = 1, 200 do t[i] = s end\nlocal r = string.format(string.rep('%s', 200), unpack(t))\n",
			"string.format: result longer than 1048576 bytes"},
		{"string.upper of a big string", "local s = string.rep('x', mib) .. string.rep('y', mib)\nlocal r = s:upper()\n",
			"string.upper: result longer than 1048576 bytes"},
		{"table grown in a loop", "local t = {}\nfor i = 1, 1e8 do t[i] = i end\n", "memory budget exceeded"},
		{"far index", "local t = {}\nt[6e7] = 1\n", "memory budget exceeded"},
		{"table.insert in a loop", "local t = {}\nfor i = 1, 1e8 do table.insert(t, {}) end\n", "memory budget exceeded"},
		{"keys in a loop", "local t = {}\nfor i = 1, 1e8 do t['k' .. i] = true end\n", "memory budget exceeded"},
		{"closures in a loop", "local t = {}\nfor i = 1, 1e8 do t[i] = function() return i end end\n", "memory budget exceeded"},
		// Substrings of fresh 1 MiB strings: each must not keep its whole source alive.
		{"substrings pin nothing", "local t = {}\nfor i = 1, 300 do t[i] = (string.rep('z', mib - 8) .. string.format('%08d', i)):sub(-8) end\n" +
			"for i = 1, 300 do local s = string.rep('z', mib - 8) .. string.format('%08d', i); t[300 + i] = s:match('%d+', -8) end\n", ""},
		// Custom data outlives the run: it counts against the budget too.
		{"custom data", "for i = 1, 300 do Session.AddCustomData(string.rep('c', mib - 8) .. string.format('%08d', i)) end\n",
			"memory budget exceeded"},
		// A JavaScript script's values are Lua values: the same budget applies, and the
		// runtime's helpers are bounded like the libraries.
		{"js concat doubling", "js:var s = 'x';\nfor (var i = 0; i < 29; i++) { s = s + s; }\n", "memory budget exceeded"},
		{"js JSON.parse of many arrays", "js:var text = '[' + '[],'.repeat(300000) + '[]]';\nvar all = [];\n" +
			"for (var i = 0; i < 100; i++) { all.push(JSON.parse(text)); }\n", "memory budget exceeded"},
		{"js JSON.parse of a long text", "js:var text = '[' + '1,'.repeat(500000) + '1,'.repeat(500000) + '1]';\nJSON.parse(text);\n",
			"JSON.parse: text longer than 1048576 bytes"},
		{"js JSON.stringify of a long string", "js:var s = '\\u0001'.repeat(200000);\nJSON.stringify(s);\n",
			"JSON.stringify: result longer than 1048576 bytes"},
		{"js join", "js:var a = [];\nvar s = 'x'.repeat(1048576);\nfor (var i = 0; i < 400; i++) { a.push(s); }\na.join('');\n",
			"table.concat: result longer than 1048576 bytes"},
		// (Regular expressions' arrays: TestRegexpMemoryBudget.)
		{"js regexp replace", "js:var s = 'x'.repeat(1048576);\ns.replace(/[x]/g, 'yy');\n", "replace: result longer than 1048576 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			script, src := "bomb.lua", "local mib = 1048576\n"+c.src
			if js, ok := strings.CutPrefix(c.src, "js:"); ok {
				script, src = "bomb.js", js
			}
			e := newEnv(t, map[string]string{script: src}, []config.EventHandler{h("BeforeFileUpload", script, timeout(20*time.Second))})
			s := e.login("alice")
			var err error
			var took time.Duration
			allocated, peak := heapUse(func() {
				start := time.Now()
				err = upload(s, "/f.txt", "x")
				took = time.Since(start)
			})
			t.Logf("%s: took %v, allocated %d MiB, peak heap growth %d MiB", c.name, took.Round(time.Millisecond),
				allocated/mib, peak/mib)
			fails := e.logs.find("event script")
			if c.err == "" {
				if err != nil || len(fails) != 0 {
					e.logs.dump(t)
					t.Fatalf("upload: %v, want the script to succeed", err)
				}
			} else {
				if !errors.Is(err, core.ErrDenied) {
					t.Fatalf("upload: %v, want denied by the failing script", err)
				}
				if len(fails) != 1 || !strings.Contains(fails[0].Attrs["err"], c.err) || fails[0].Msg != "event script failed" {
					e.logs.dump(t)
					t.Fatalf("want one failure log with %q", c.err)
				}
			}
			// The heap holds the run's values and garbage not yet collected (the garbage
			// collector lets the heap reach twice what is live).
			if peak > 3*budget {
				t.Errorf("the heap grew by %d MiB, more than three times the budget", peak/mib)
			}
		})
	}
}

// Legitimate scripts that build strings and tables bit by bit still run.
func TestMemoryBudgetAllowsOrdinaryScripts(t *testing.T) {
	e := newEnv(t, map[string]string{"ok.lua": lines(
		"local s = ''",
		"for i = 1, 10000 do s = s .. 'line ' .. i .. '\\n' end",
		"local t, u = {}, {}",
		"for i = 1, 10000 do t[#t + 1] = 'item ' .. i; table.insert(u, {i}) end",
		"local big = string.rep('y', 1048576)",
		"local parts = {}",
		"for i = 1, 40 do parts[i] = big:sub(i, -i) end", // substrings of a live string: cheap views
		"Log(#s .. ' ' .. #t .. ' ' .. #u .. ' ' .. #parts .. ' ' .. table.concat(t, ',', 1, 3))",
	)}, []config.EventHandler{slowHandler(h("BeforeFileUpload", "ok.lua"))})
	must(t, upload(e.login("alice"), "/f.txt", "x"))
	n := 0
	for i := 1; i <= 10000; i++ {
		n += len(fmt.Sprintf("line %d\n", i))
	}
	e.wantLines(fmt.Sprintf("%d 10000 10000 40 item 1,item 2,item 3", n))
}

// slowHandler gives a handler a timeout long enough for the race detector on a loaded
// machine: the test is about memory, not time (building the 10,000-line string copies about
// 500 MB).
func slowHandler(hd config.EventHandler) config.EventHandler {
	hd.Timeout = config.Duration{Duration: time.Minute}
	return hd
}

// Library calls that could run long in Go stop at the run's deadline (the VM only checks it
// between instructions): unpack and select are bounded, long matches are interrupted.
func TestLongLibraryCallsHonourTimeout(t *testing.T) {
	for _, c := range []struct{ name, src, err string }{
		{"unpack 3e8", "local a = unpack({}, 1, 3e8)\n", "too many results to unpack"},
		{"unpack into a call", "local n = select('#', unpack({}, 1, 1e7))\n", "too many results to unpack"},
		{"string.byte", "local s = string.rep('a', 1048576)\nlocal n = select('#', s:byte(1, -1))\n", "string slice too long"},
		{"backtracking pattern", "local s = string.rep('a', 40)\nstring.find(s, string.rep('a?', 40) .. string.rep('a', 40))\n", "timed out after 1s"},
		{"nested .-", "local s = string.rep('a', 20000)\nstring.find(s, '.-.-.-b')\n", "timed out after 1s"},
		{"gmatch", "local s = string.rep('a', 4000)\nfor m in s:gmatch('.-.-b') do end\n", "timed out after 1s"},
		{"gsub", "local s = string.rep('a', 20000)\nstring.gsub(s, '.-.-b', '')\n", "timed out after 1s"},
		{"js regexp", "js:/(a+)+$/.test('a'.repeat(40) + 'b');\n", "regular expression: timed out"},
		{"js regexp caught", "js:try { /(a+)+$/.test('a'.repeat(40) + 'b'); } catch (e) { Log('caught'); }\nwhile (true) {}\n", "timed out after 1s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			script, src := "long.lua", c.src
			if js, ok := strings.CutPrefix(c.src, "js:"); ok {
				script, src = "long.js", js
			}
			e := newEnv(t, map[string]string{script: src}, []config.EventHandler{h("BeforeFileUpload", script, timeout(time.Second))})
			s := e.login("alice")
			start := time.Now()
			err := upload(s, "/f.txt", "x")
			took := time.Since(start)
			if !errors.Is(err, core.ErrDenied) {
				t.Fatalf("upload: %v, want denied by the failing script", err)
			}
			// A second of timeout, and as much again for a loaded machine.
			if took > 2*time.Second {
				t.Errorf("the run took %v with a 1s timeout", took)
			}
			fails := e.logs.find("event script")
			if len(fails) != 1 || !strings.Contains(fails[0].Attrs["err"], c.err) {
				e.logs.dump(t)
				t.Fatalf("want one failure log with %q", c.err)
			}
		})
	}
}

func maxMemory(n config.ByteSize) func(*config.EventHandler) {
	return func(h *config.EventHandler) { h.MaxMemory = n }
}

// max_memory sets each handler's budget.
func TestMaxMemoryPerHandler(t *testing.T) {
	src := "local t = {}\nfor i = 1, 8 do t[i] = string.rep(string.char(64 + i), 1048576) end\n"
	e := newEnv(t, map[string]string{"small.lua": src, "large.lua": src}, []config.EventHandler{
		h("BeforeFileUpload", "small.lua", maxMemory(4*mib)), h("BeforeFileUpload", "large.lua", maxMemory(16*mib), onError("continue"))})
	err := upload(e.login("alice"), "/f.txt", "x")
	if !errors.Is(err, core.ErrDenied) {
		t.Fatalf("upload: %v, want denied by small.lua", err)
	}
	fails := e.logs.find("event script failed")
	if len(fails) != 1 || fails[0].Attrs["script"] != "small.lua" ||
		fails[0].Attrs["err"] != "small.lua:2: memory budget exceeded (max_memory 4MiB)" {
		e.logs.dump(t)
		t.Fatalf("want small.lua alone to fail on its budget")
	}
}
