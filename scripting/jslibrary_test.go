package scripting_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting/jscompat"
)

// A .js handler refuses uploads by a case-insensitive regular expression, over every
// protocol, with the Go clients and OpenSSH sftp; refused files never reach the disk.
func TestE2ERegexDenyJS(t *testing.T) {
	s := newStack(t, map[string]string{"deny.js": lines(
		"var denied = /\\.(exe|bat|cmd|ps1)\\.*$/i;",
		"var name = CtxRelPath().replace(/^.*\\//, '');",
		"if (denied.test(name) || new RegExp('^~\\\\$').test(name)) {",
		"  Log.Warn('refused ' + name + ' by ' + denied);",
		"  Session.BlockOperation();",
		"}",
	)}, []config.EventHandler{h("BeforeFileUpload", "deny.js")})
	home := s.home("alice")
	refused := []string{"Setup.EXE", "run.bat", "x.Ps1", "y.cmd.", "~$lock.docx"}
	accepted := []string{"exe", "notes.txt", "setup.exe.txt"} // (sorted, as onlyFiles lists them)
	for _, gc := range s.goClients() {
		t.Run(gc.name, func(t *testing.T) {
			dir := "/" + strings.ToLower(gc.name)
			must(t, os.MkdirAll(filepath.Join(home, dir), 0o755))
			c := gc.dial(t)
			defer c.close()
			for _, name := range refused {
				if err := c.upload(dir+"/"+name, []byte("MZ")); !isDenied(err) {
					t.Errorf("upload %s: %v, want permission denied", name, err)
				}
			}
			for _, name := range accepted {
				must(t, c.upload(dir+"/"+name, []byte("text")))
			}
			onlyFiles(t, filepath.Join(home, dir), accepted...)
		})
	}
	t.Run("OpenSSH sftp", func(t *testing.T) {
		must(t, os.MkdirAll(filepath.Join(home, "sftpbin"), 0o755))
		out, err := s.sftpBatch(t, "put "+s.local(t, "Setup.EXE", []byte("MZ"))+" /sftpbin/Setup.EXE")
		if err == nil || !strings.Contains(strings.ToLower(out), "permission denied") {
			t.Errorf("sftp put Setup.EXE: %v, want permission denied\n%s", err, out)
		}
		if out, err := s.sftpBatch(t, "put "+s.local(t, "notes.txt", []byte("text"))+" /sftpbin/notes.txt"); err != nil {
			t.Errorf("sftp put notes.txt: %v\n%s", err, out)
		}
		onlyFiles(t, filepath.Join(home, "sftpbin"), "notes.txt")
	})
	if n := len(s.logs.find("refused Setup.EXE by /\\.(exe|bat|cmd|ps1)\\.*$/i")); n != len(s.goClients())+1 {
		s.logs.dump(t)
		t.Errorf("%d refusal lines for Setup.EXE, want %d", n, len(s.goClients())+1)
	}
}

// Date's toUTCString and toLocale… methods, from JS and Lua, with the timeZone option.
func TestDateStrings(t *testing.T) {
	e := newEnv(t, map[string]string{
		"d.js": lines(
			"var d = new Date(1714568709000);",
			"Log(d.toUTCString(), '|', d.toLocaleString('en-US', {timeZone: 'UTC'}), '|', d.toLocaleDateString(undefined, {timeZone: 'Asia/Tokyo'}));",
			"Log(d.toLocaleTimeString('en-US', {timeZone: 'America/New_York'}), '|', d.toLocaleString(), '|', d.toLocaleString('de-DE', {}));",
			"try { d.toLocaleString('en-US', {timeZone: 'Mars/Olympus'}); } catch (e) { Log(e.name + ': ' + e.message); }",
			"try { d.toLocaleString('en-US', {timeZone: '../../etc/passwd'}); } catch (e) { Log(e.name); }",
		),
		"d.lua": lines(
			"local d = Date(1714568709000)",
			"Log(d.toUTCString() .. ' ' .. d:toGMTString() .. ' ' .. d:toLocaleString(nil, {timeZone = 'UTC'}) .. ' ' .. d.toLocaleTimeString())",
		)},
		[]config.EventHandler{h("BeforeFileUpload", "d.js"), h("BeforeFileUpload", "d.lua")})
	must(t, upload(e.login("alice"), "/f.txt", "x"))
	local := time.UnixMilli(1714568709000).Local()
	e.wantLines(
		"Wed, 01 May 2024 13:05:09 GMT | 5/1/2024, 1:05:09 PM | 5/1/2024",
		"9:05:09 AM | "+jscompat.DateLocaleString(local, jscompat.LocaleBoth)+" | "+jscompat.DateLocaleString(local, jscompat.LocaleBoth),
		"RangeError: Invalid time zone specified: Mars/Olympus",
		"RangeError",
		"Wed, 01 May 2024 13:05:09 GMT Wed, 01 May 2024 13:05:09 GMT 5/1/2024, 1:05:09 PM "+jscompat.DateLocaleString(local, jscompat.LocaleTime),
	)
}

// The arrays that regular expressions build (split, match, matchAll) count against the
// run's max_memory as they are filled: each attack ends with the budget's error, and the
// heap stays within a small multiple of the budget. (A budget of 8 MiB keeps the attacks
// short; TestMemoryBudget runs the others at the default 64 MiB.)
func TestRegexpMemoryBudget(t *testing.T) {
	const budget = 8 * mib
	for _, c := range []struct{ name, src string }{
		{"split by an empty regexp", "var s = 'x'.repeat(262144);\nvar all = [];\nfor (var i = 0; i < 100; i++) { all.push(s.split(/(?:)/)); }\n"},
		{"match of every character", "var s = 'ab'.repeat(131072);\nvar all = [];\nfor (var i = 0; i < 100; i++) { all.push(s.match(/./g)); }\n"},
		{"matchAll with groups", "var s = 'ab'.repeat(131072);\nvar all = [];\nfor (var i = 0; i < 100; i++) { all.push(s.matchAll(/(a)(b)/g)); }\n"},
		{"replace callbacks keeping matches", "var s = 'ab'.repeat(131072);\nvar all = [];\nfor (var i = 0; i < 100; i++) { s.replace(/(a)(b)/g, function (m, a, b) { all.push([m, a, b]); return ''; }); }\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"bomb.js": c.src},
				[]config.EventHandler{h("BeforeFileUpload", "bomb.js", timeout(20*time.Second), maxMemory(budget))})
			s := e.login("alice")
			var err error
			allocated, peak := heapUse(func() { err = upload(s, "/f.txt", "x") })
			t.Logf("%s: allocated %d MiB, peak heap growth %d MiB", c.name, allocated/mib, peak/mib)
			if !errors.Is(err, core.ErrDenied) {
				t.Fatalf("upload: %v, want denied by the failing script", err)
			}
			fails := e.logs.find("event script failed")
			if len(fails) != 1 || !strings.Contains(fails[0].Attrs["err"], "memory budget exceeded (max_memory 8MiB)") {
				e.logs.dump(t)
				t.Fatal("want one failure log with the budget's error")
			}
			// As in TestMemoryBudget, with room for what does not scale with the budget (the
			// decoded subject, the site), which weighs more against 8 MiB than against 64.
			if peak > 4*budget {
				t.Errorf("the heap grew by %d MiB, more than four times the budget", peak/mib)
			}
		})
	}
}
