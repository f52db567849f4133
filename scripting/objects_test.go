package scripting_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"

	"github.com/wharf-project/wharf/core/config"
)

func TestUserObject(t *testing.T) {
	e := newEnv(t, map[string]string{"user.lua": lines(
		"local u = Session.GetUser()",
		"Log(u.GetID() .. '|' .. u:GetID() .. '|' .. u.EMail .. '|' .. u.Type .. '|' .. u.Description .. '|' ..",
		"  table.concat(u.Subsystems, ',') .. '|' .. #u.Subsystems .. '|' .. tostring(u.Nope) .. '|' .. tostring(u))",
		"for _, f in ipairs({function() u.EMail = 'x' end, function() u.Type = 'admin' end, function() u.GetID = nil end}) do",
		"  local ok, err = pcall(f)",
		"  Log('write ok=' .. tostring(ok) .. ' ' .. tostring(err))",
		"end",
		"Log('after=' .. u.EMail)")},
		[]config.EventHandler{h("OnAuthSuccess", "user.lua")},
		testUser("alice", func(u *config.User) { u.Type = "partner"; u.Subsystems = []string{"SFTP", "FTPES"} }))
	e.login("alice")
	e.wantLines(
		"alice|alice|alice@example.com|partner|test user alice|SFTP,FTPES|2|nil|User(alice)",
		"write ok=false user.lua:4: User is read-only: cannot set EMail",
		"write ok=false user.lua:4: User is read-only: cannot set Type",
		"write ok=false user.lua:4: User is read-only: cannot set GetID",
		"after=alice@example.com",
	)
}

func TestDate(t *testing.T) {
	e := newEnv(t, map[string]string{"date.lua": lines(
		"local d = Date('2024-03-05T07:08:09.123Z')",
		"Log(d.toISOString() .. ' ' .. d:toISOString() .. ' ' .. tostring(d) .. ' ' .. d.getTime() .. ' ' .. d:getTime())",
		"local e = Date(0)",
		"Log(tostring(e) .. ' diff=' .. (d - e) .. ' lt=' .. tostring(e < d) .. ' le=' .. tostring(d <= d) ..",
		"  ' eq=' .. tostring(Date(0) == e) .. ' ne=' .. tostring(d == e) .. ' gt=' .. tostring(d > e))",
		"local s = Session.GetStartTime()",
		"local now = Date()",
		"Log('start<=now=' .. tostring(s <= now) .. ' now-ms=' .. tostring(math.abs(Date.now() - now:getTime()) < 5000) ..",
		"  ' num=' .. tostring(now - 1000 == now:getTime() - 1000) .. ' concat=' .. ('at ' .. e))",
		"Log(s.getFullYear() .. '-' .. s:getMonth() .. '-' .. s.getDate() .. ' ' .. s:getHours() .. ':' .. s.getMinutes() ..",
		"  ':' .. s:getSeconds() .. ' day=' .. s.getDay())",
		"Log(tostring(pcall(function() d.x = 1 end)) .. ' ' .. tostring(pcall(Date, 'yesterday')))")},
		[]config.EventHandler{h("OnAuthSuccess", "date.lua")})
	s := e.login("alice")
	st := s.StartTime().Local()
	e.wantLines(
		"2024-03-05T07:08:09.123Z 2024-03-05T07:08:09.123Z 2024-03-05T07:08:09.123Z 1709622489123 1709622489123",
		"1970-01-01T00:00:00.000Z diff=1709622489123 lt=true le=true eq=true ne=false gt=true",
		"start<=now=true now-ms=true num=true concat=at 1970-01-01T00:00:00.000Z",
		st.Format("2006")+"-"+itoa(int(st.Month())-1)+"-"+itoa(st.Day())+" "+itoa(st.Hour())+":"+itoa(st.Minute())+
			":"+itoa(st.Second())+" day="+itoa(int(st.Weekday())),
		"false false",
	)
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestGlobals(t *testing.T) {
	e := newEnv(t, map[string]string{"g.lua": lines(
		"Log(EventHandler() .. ' ' .. CtxRelPath() .. ' -> ' .. CtxRelTargetPath())",
		"for _, p in ipairs({'/a/report.pdf', 'archive.tar.gz', '/dir.d/noext', 'noext', '/x/.bashrc', ''}) do",
		"  Log('ext ' .. p .. ' = [' .. ExtractExt(p) .. ']')",
		"end",
		"Log.Debug('debug line')",
		"Log:Info('info line')",
		"Log.Warn('warn', 'line', 3)",
		"Log:Error('error line')",
		"Log('plain line')")},
		[]config.EventHandler{h("AfterFileRename", "g.lua")})
	s := e.login("alice")
	must(t, upload(s, "/a.txt", "x"))
	must(t, s.Rename(context.Background(), "/a.txt", "/b.txt", true))
	e.wantLines(
		"AfterFileRename /a.txt -> /b.txt",
		"ext /a/report.pdf = [.pdf]", "ext archive.tar.gz = [.gz]", "ext /dir.d/noext = []", "ext noext = []",
		"ext /x/.bashrc = [.bashrc]", "ext  = []",
		"debug line", "info line", "warn line 3", "error line", "plain line")
	for msg, level := range map[string]slog.Level{"debug line": slog.LevelDebug, "info line": slog.LevelInfo,
		"warn line 3": slog.LevelWarn, "error line": slog.LevelError, "plain line": slog.LevelInfo} {
		r := e.logs.find(msg)[0]
		if r.Level != level {
			t.Errorf("%q logged at %s, want %s", msg, r.Level, level)
		}
		if r.Attrs["site"] != "test" || r.Attrs["session"] != s.ID() || r.Attrs["event"] != "AfterFileRename" ||
			r.Attrs["script"] != "g.lua" {
			t.Errorf("%q attributes: %v", msg, r.Attrs)
		}
	}
}

func TestCtxPathsFixedWhenFired(t *testing.T) {
	// Without a file the context paths are empty.
	e := newEnv(t, map[string]string{"p.lua": "Log('[' .. CtxRelPath() .. '][' .. CtxRelTargetPath() .. ']')\n"},
		[]config.EventHandler{h("OnAuthSuccess", "p.lua"), h("BeforeFileDownload", "p.lua")})
	s := e.login("alice")
	must(t, upload(s, "/d.txt", "x"))
	if _, err := download(s, "/d.txt"); err != nil {
		t.Fatal(err)
	}
	e.wantLines("[][]", "[/d.txt][]")
}

// Session, Conn, User and dates follow the host-class rules (class.go): writes are refused
// naming the object and the key, unknown names read as nil, a date's method read from one
// date is refused on another, and Date is a class (Date.new, new Date in JS).
func TestObjectsClassRules(t *testing.T) {
	e := newEnv(t, map[string]string{"rules.lua": lines(
		"local function try(f) local ok, err = pcall(f) return tostring(ok) .. ' ' .. tostring(err):gsub('^rules.lua:%d+: ', '') end",
		"Log('session=' .. try(function() Session.GetID = nil end) .. ' | ' .. try(function() Session.Nope = 1 end))",
		"Log('unknown=' .. tostring(Session.Nope) .. ' ' .. tostring(Session) .. ' ' .. tostring(Session.GetUser().Nope))",
		"Log('self=' .. tostring(Session:GetUserID() == Session.GetUserID()))",
		"local a, b = Date(0), Date(1000)",
		"Log('date=' .. try(function() return a.getTime(b) end) .. ' | ' .. try(function() a.x = 1 end))",
		"Log('new=' .. Date.new(1000).getTime() .. ' ' .. Date:new(2000):getTime() .. ' ' .. tostring(Date))",
		"Log('bad=' .. try(function() return Date('yesterday') end))",
	), "rules.js": "Log('js=' + new Date(5).getTime() + ' ' + (typeof Date));\n"},
		[]config.EventHandler{h("OnAuthSuccess", "rules.lua"), h("OnAuthSuccess", "rules.js")})
	e.login("alice")
	e.wantLines(
		"session=false Session is read-only: cannot set GetID | false Session is read-only: cannot set Nope",
		"unknown=nil Session nil",
		"self=true",
		"date=false Date.getTime: called on another Date than the one it was read from | false Date is read-only: cannot set x",
		"new=1000 2000 Date",
		"bad=false bad argument #1 to Date (not a date: yesterday)",
		"js=5 function",
	)
}
