package scripting_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/wharf-project/wharf/core"
	"github.com/wharf-project/wharf/core/config"
)

// getters lists the Session members without side effects; the script calls each in both
// styles and logs "name=value", or "MISMATCH name" when the styles disagree.
const gettersScript = `
local function show(v)
  if v == nil then return "nil" end
  if type(v) == "table" then return "[" .. table.concat(v, ",") .. "]" end
  return tostring(v)
end
for _, n in ipairs({"GetID", "GetUserID", "GetVirtualSite", "GetRemoteAddress", "GetClientVersion",
    "GetProtocol", "GetStartTime", "GetLastActivity", "GetAbsPath", "GetAbsTargetPath", "GetRelPath",
    "GetRelTargetPath", "GetLastCommand", "GetLastCommandTime", "GetLastError", "GetLastErrorTime",
    "GetAllCustomData"}) do
  local js, lua = show(Session[n]()), show(Session[n](Session))
  if js ~= lua then Log("MISMATCH " .. n .. ": " .. js .. " / " .. lua) end
  Log(n .. "=" .. js)
end
for _, i in ipairs({0, 1, 2, -1, 99}) do
  local js, lua = Session.GetCustomData(i), Session:GetCustomData(i)
  if js ~= lua then Log("MISMATCH GetCustomData") end
  Log("GetCustomData(" .. i .. ")=" .. js)
end
local u1, u2 = Session.GetUser(), Session:GetUser()
Log("GetUser=" .. u1.GetID() .. "|" .. u2:GetID())
`

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func TestSessionGetters(t *testing.T) {
	e := newEnv(t, map[string]string{"get.lua": gettersScript, "data.lua": lines(
		"Session.AddCustomData('first')",
		"Session:AddCustomData('second')")},
		[]config.EventHandler{h("AfterFileRename", "get.lua"), h("AfterFileUpload", "data.lua")})
	s := e.login("alice")
	s.SetClientVersion("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10")
	ctx := context.Background()
	must(t, upload(s, "/a.txt", "x"))
	if _, err := s.Stat(ctx, "/missing"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("stat missing: %v", err)
	}
	must(t, s.Rename(ctx, "/a.txt", "/b.txt", true))
	got := e.kv()
	for _, l := range e.logs.scriptLines() {
		if strings.HasPrefix(l, "MISMATCH") {
			t.Error(l)
		}
	}
	cmdTime, _ := s.LastCommandTime()
	errTime, _ := s.LastErrorTime()
	want := map[string]string{
		"GetID":              s.ID(),
		"GetUserID":          "alice",
		"GetVirtualSite":     "test",
		"GetRemoteAddress":   "192.0.2.10",
		"GetClientVersion":   "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10",
		"GetProtocol":        "SFTP",
		"GetStartTime":       iso(s.StartTime()),
		"GetAbsPath":         filepath.Join(e.root, "alice", "a.txt"),
		"GetAbsTargetPath":   filepath.Join(e.root, "alice", "b.txt"),
		"GetRelPath":         "/a.txt",
		"GetRelTargetPath":   "/b.txt",
		"GetLastCommand":     s.LastCommand(),
		"GetLastCommandTime": iso(cmdTime),
		"GetLastError":       s.LastError(),
		"GetLastErrorTime":   iso(errTime),
		"GetAllCustomData":   "[first,second]",
		"GetCustomData(0)":   "first",
		"GetCustomData(1)":   "second",
		"GetCustomData(2)":   "",
		"GetCustomData(-1)":  "",
		"GetCustomData(99)":  "",
		"GetUser":            "alice|alice",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.HasPrefix(got["GetLastCommand"], "RENAME") || got["GetLastError"] == "" {
		t.Errorf("last command %q, last error %q", got["GetLastCommand"], got["GetLastError"])
	}
	la, err := time.Parse(time.RFC3339, got["GetLastActivity"])
	if err != nil || la.Before(s.StartTime().Truncate(time.Millisecond)) {
		t.Errorf("GetLastActivity = %q (%v)", got["GetLastActivity"], err)
	}
}

// TestSessionAvailability fires events through the core pipeline and checks what each sees.
func TestSessionAvailability(t *testing.T) {
	script := lines(
		"local s = 'nil'",
		"if Session then",
		"  local u = Session.GetUser()",
		"  s = 'user=' .. (u and u.GetID() or 'nil') .. ' uid=\"' .. Session.GetUserID() .. '\"'",
		"  s = s .. ' errtime=' .. tostring(Session.GetLastErrorTime() ~= nil)",
		"end",
		"Log(EventHandler() .. ' session=' .. s .. ' conn=' .. tostring(Conn ~= nil))")
	var hs []config.EventHandler
	for _, ev := range []string{"OnNewConnection", "BeforeSendSoftwareID", "OnAuthRequest", "OnAuthPassword",
		"OnAuthFail", "OnAuthSuccess", "BeforeOpenSFTP", "BeforeFileUpload", "AfterFileUpload", "OnConnectionClose"} {
		hs = append(hs, h(ev, "ev.lua"))
	}
	e := newEnv(t, map[string]string{"ev.lua": script}, hs)
	ctx := context.Background()
	s := e.connect("192.0.2.10", core.ProtoSFTP)
	e.site.SoftwareID(ctx, s, "SSH-2.0-wharf")
	if err := s.AuthPassword(ctx, "alice", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	must(t, s.AuthPassword(ctx, "alice", "pw"))
	must(t, s.OpenSubsystem(ctx, core.ProtoSFTP, "subsystem sftp"))
	must(t, upload(s, "/f.txt", "x"))
	s.Close()
	e.wantLines(
		"OnNewConnection session=nil conn=true",
		"BeforeSendSoftwareID session=nil conn=true",
		`OnAuthRequest session=user=nil uid="" errtime=false conn=false`,
		`OnAuthPassword session=user=nil uid="" errtime=false conn=false`,
		`OnAuthFail session=user=nil uid="" errtime=true conn=false`,
		`OnAuthPassword session=user=nil uid="" errtime=true conn=false`,
		`OnAuthSuccess session=user=alice uid="alice" errtime=true conn=false`,
		`BeforeOpenSFTP session=user=alice uid="alice" errtime=true conn=false`,
		`BeforeFileUpload session=user=alice uid="alice" errtime=true conn=false`,
		`AfterFileUpload session=user=alice uid="alice" errtime=true conn=false`,
		`OnConnectionClose session=user=alice uid="alice" errtime=true conn=false`,
	)
}

func TestLastTimesNilBeforeAny(t *testing.T) {
	e := newEnv(t, map[string]string{"t.lua": lines(
		"Log('err=' .. tostring(Session.GetLastErrorTime()) .. ' cmd=' .. tostring(Session:GetLastCommandTime() ~= nil))")},
		[]config.EventHandler{h("OnAuthSuccess", "t.lua")})
	e.login("alice")
	e.wantLines("err=nil cmd=true")
}

func TestCustomDataAcrossEvents(t *testing.T) {
	e := newEnv(t, map[string]string{
		"add.lua":   "Session.AddCustomData(Session.GetRelPath())\n",
		"close.lua": "Log(#Session.GetAllCustomData() .. ': ' .. table.concat(Session:GetAllCustomData(), ', ') .. ' first=' .. Session.GetCustomData(0) .. ' out=[' .. Session.GetCustomData(3) .. ']')\n",
	}, []config.EventHandler{h("AfterFileUpload", "add.lua"), h("OnConnectionClose", "close.lua")})
	s := e.login("alice")
	for _, p := range []string{"/a", "/b", "/c"} {
		must(t, upload(s, p, "x"))
	}
	s.Close()
	e.wantLines("3: /a, /b, /c first=/a out=[]")

	// A session without data sees an empty sequence.
	e.logs.reset()
	e.login("alice").Close()
	e.wantLines("0:  first= out=[]")
}

func TestBlockOperationGateAndNonGate(t *testing.T) {
	e := newEnv(t, map[string]string{"block.lua": lines(
		"if CtxRelPath():find('trap') then Session.BlockOperation() end")},
		[]config.EventHandler{h("BeforeDirCreate", "block.lua"), h("AfterDirCreate", "block.lua")})
	s := e.login("alice")
	ctx := context.Background()
	// A gate event refuses its own operation.
	if err := s.Mkdir(ctx, "/trap-gate"); !errors.Is(err, core.ErrDenied) {
		t.Fatalf("mkdir refused by BeforeDirCreate: %v, want denied", err)
	}
	if _, err := s.Stat(ctx, "/"); err != nil {
		t.Fatalf("the gate's block must not carry over: %v", err)
	}
	// A non-gate event refuses the session's next operation.
	e2 := newEnv(t, map[string]string{"block.lua": "if CtxRelPath():find('trap') then Session:BlockOperation() end\n"},
		[]config.EventHandler{h("AfterDirCreate", "block.lua")})
	s2 := e2.login("alice")
	must(t, s2.Mkdir(ctx, "/trap"))
	if _, err := s2.Stat(ctx, "/trap"); !errors.Is(err, core.ErrDenied) {
		t.Fatalf("operation after a block in AfterDirCreate: %v, want denied", err)
	}
	if _, err := s2.Stat(ctx, "/trap"); err != nil {
		t.Fatalf("the block applies to one operation: %v", err)
	}
}

func TestAfterUploadVetoDiscardsAtomicUpload(t *testing.T) {
	e := newEnv(t, map[string]string{"veto.lua": "if Session.GetRelPath():find('virus') then Session.BlockOperation() end\n"},
		[]config.EventHandler{h("AfterFileUpload", "veto.lua")})
	s := e.login("alice")
	if err := upload(s, "/virus.bin", "EICAR"); !errors.Is(err, core.ErrDenied) {
		t.Fatalf("vetoed upload: %v, want denied", err)
	}
	if _, err := s.Stat(context.Background(), "/virus.bin"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("vetoed upload is visible: %v", err)
	}
	must(t, upload(s, "/clean.txt", "ok"))
	if got, err := download(s, "/clean.txt"); err != nil || got != "ok" {
		t.Fatalf("clean upload: %q, %v", got, err)
	}
	entries, err := filepath.Glob(filepath.Join(e.root, "alice", "*"))
	must(t, err)
	if len(entries) != 1 || filepath.Base(entries[0]) != "clean.txt" {
		t.Fatalf("files on disk: %v, want only clean.txt (no temp file left)", entries)
	}
}

func TestRemoveFromListDir(t *testing.T) {
	e := newEnv(t, map[string]string{"hide.lua": "Session.RemoveFromListDir('*.tmp'); Session:RemoveFromListDir('secret.txt')\n"},
		[]config.EventHandler{h("OnDirList", "hide.lua")})
	s := e.login("alice")
	ctx := context.Background()
	for _, p := range []string{"/a.txt", "/b.tmp", "/secret.txt"} {
		must(t, upload(s, p, "data"))
	}
	fis, err := s.List(ctx, "/")
	must(t, err)
	var names []string
	for _, fi := range fis {
		names = append(names, fi.Name())
	}
	if strings.Join(names, ",") != "a.txt" {
		t.Fatalf("listing: %v, want [a.txt]", names)
	}
	for _, p := range []string{"/b.tmp", "/secret.txt"} {
		if _, err := download(s, p); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("download of hidden %s: %v, want not found", p, err)
		}
	}
}

func TestQuestionsAndInteractiveAuth(t *testing.T) {
	secret := "JBSWY3DPEHPK3PXP"
	e := newEnv(t, map[string]string{
		"q.lua": lines(
			"Session.AddQuestion(2, 'PIN: ', 1234, false)",
			"Session:AddQuestion(1, 'Colour? ', 'blue', true)",
			"Session.AddQuestionPassword(0, 'Password: ')",
			"Session:AddQuestionTOTP(3, 'Code: ')"),
		"late.lua": "Session.AddQuestion(0, 'x', 'y', true); Session:AddQuestionPassword(0, 'p'); Session.AddQuestionTOTP(0, 't')\n",
	}, []config.EventHandler{h("OnAuthInteractiveSetQuestions", "q.lua"), h("OnAuthSuccess", "late.lua")},
		testUser("alice", func(u *config.User) { u.TOTPSecret = secret }))
	ctx := context.Background()

	s := e.connect("192.0.2.10", core.ProtoSFTP)
	qs, err := s.InteractiveQuestions(ctx, "alice")
	must(t, err)
	var got []string
	for _, q := range qs {
		got = append(got, q.Prompt+"/"+map[bool]string{true: "echo", false: "noecho"}[q.Echo])
	}
	if strings.Join(got, "|") != "Password: /noecho|Colour? /echo|PIN: /noecho|Code: /noecho" {
		t.Fatalf("questions: %v", got)
	}
	if err := s.AuthInteractive(ctx, "alice", []string{"pw", "blue", "1234", "000000"}); err == nil {
		t.Fatal("wrong TOTP accepted")
	}
	_, err = s.InteractiveQuestions(ctx, "alice")
	must(t, err)
	code, err := totp.GenerateCode(secret, time.Now())
	must(t, err)
	must(t, s.AuthInteractive(ctx, "alice", []string{"pw", "blue", "1234", code}))
	if s.UserID() != "alice" {
		t.Fatal("not authenticated")
	}
	// AddQuestion* outside OnAuthInteractiveSetQuestions does nothing and warns.
	if n := len(e.logs.find("has no effect")); n != 3 {
		e.logs.dump(t)
		t.Fatalf("%d warnings for AddQuestion* outside OnAuthInteractiveSetQuestions, want 3", n)
	}
}

func TestAuthenticateUserFromScript(t *testing.T) {
	e := newEnv(t, map[string]string{
		"ext.lua": lines(
			"local users = { ext1 = 'secret1', alice = 'other' }",
			"local name = Session.GetLastCommand():match('^AUTH (.*)$')",
			"if users[name] then Session:AuthenticateUserFromScript() end"),
		"late.lua": "Session.AuthenticateUserFromScript()\n",
	}, []config.EventHandler{h("OnAuthPassword", "ext.lua"), h("OnAuthSuccess", "late.lua")},
		testUser("alice"), testUser("bob"), testUser("*", func(u *config.User) { u.Password = "" }))
	ctx := context.Background()
	cases := []struct {
		user, pass string
		ok         bool
	}{
		{"ext1", "anything", true}, // unknown user accepted by the script: the catch-all profile
		{"alice", "wrong", true},   // known user: the script overrides the built-in check
		{"nobody", "pw", false},    // not in the script's list and unknown
		{"bob", "wrong", false},    // known, not in the list, wrong password
		{"bob", "pw", true},        // built-in check
	}
	for _, c := range cases {
		s := e.connect("192.0.2.10", core.ProtoFTP)
		err := s.AuthPassword(ctx, c.user, c.pass)
		if (err == nil) != c.ok {
			t.Errorf("%s/%s: %v, want ok=%v", c.user, c.pass, err, c.ok)
		}
		if err == nil && s.UserID() != c.user {
			t.Errorf("%s: authenticated as %q", c.user, s.UserID())
		}
	}
	if n := len(e.logs.find("AuthenticateUserFromScript has no effect")); n != 3 {
		t.Errorf("%d warnings for AuthenticateUserFromScript in OnAuthSuccess, want 3", n)
	}
}
