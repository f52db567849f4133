package scripting_test

import (
	"testing"
	"time"

	"github.com/wharf-project/wharf/core/config"
	"github.com/wharf-project/wharf/scripting/jscompat"
)

// A .js handler refuses uploads by a case-insensitive regular expression, over every
// protocol, with real clients.
func TestE2ERegexDenyJS(t *testing.T) {
	e := newEnv(t, map[string]string{"deny.js": lines(
		"var denied = /\\.(exe|bat|cmd|ps1)\\.*$/i;",
		"var name = CtxRelPath().replace(/^.*\\//, '');",
		"if (denied.test(name) || new RegExp('^~\\\\$').test(name)) {",
		"  Log.Warn('refused ' + name + ' by ' + denied);",
		"  Session.BlockOperation();",
		"}",
	)}, []config.EventHandler{h("BeforeFileUpload", "deny.js")})
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c := p.dial(t, e, "alice", "pw")
			defer c.close()
			for _, name := range []string{"/Setup.EXE", "/run.bat", "/x.Ps1", "/~$lock.docx"} {
				if err := c.upload(name, []byte("MZ")); err == nil {
					t.Errorf("%s accepted", name)
				}
			}
			for _, name := range []string{"/notes.txt", "/exe", "/setup.exe.txt"} {
				must(t, c.upload(name, []byte("text")))
			}
		})
	}
	if n := len(e.logs.find("refused Setup.EXE by /\\.(exe|bat|cmd|ps1)\\.*$/i")); n != len(protocols) {
		e.logs.dump(t)
		t.Errorf("%d refusal lines for Setup.EXE, want %d", n, len(protocols))
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
