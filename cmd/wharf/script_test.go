package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScriptRunExamples(t *testing.T) {
	dir := "../../testdata/scripts"
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"log-session.lua", "--event", "OnAuthSuccess", "--user", "carol"}, 0,
			[]string{"User carol connected with session ID", "authenticated user:      carol", "blocked:                 no"}},
		{[]string{"log-session.lua", "--event", "OnNewConnection"}, 0, []string{"Session object is not available."}},
		{[]string{"--event", "BeforeFileUpload", "deny-executables.lua", "--path", "/in/setup.exe", "--protocol", "ftp"}, 0,
			[]string{"refused upload of an executable: /in/setup.exe", "upload /in/setup.exe: refused", "blocked:                 yes"}},
		{[]string{"deny-executables.lua", "--event", "BeforeFileUpload", "--path", "/in/a.txt"}, 0,
			[]string{"upload /in/a.txt: ok", "blocked:                 no"}},
		{[]string{"totp-second-factor.lua", "--event", "OnAuthInteractiveSetQuestions"}, 0,
			[]string{`question:                pos=0 echo=false "Password: "`, `question:                pos=1 echo=false "Verification code: "`}},
		{[]string{"external-auth.lua", "--event", "OnAuthRequest", "--event", "OnAuthPassword", "--user", "acme", "--unknown-user", "--ip", "203.0.113.50", "--protocol", "FTP"}, 0,
			[]string{"authenticated by script: true", "authenticated user:      acme"}},
		{[]string{"external-auth.lua", "--event", "OnAuthRequest", "--event", "OnAuthPassword", "--user", "acme", "--unknown-user", "--ip", "192.0.2.1"}, 0,
			[]string{"authenticated by script: false", "refused"}},
		{[]string{"upload-list.lua", "--event", "AfterFileUpload", "--path", "/r.csv"}, 0, []string{`custom data[0]:          "/r.csv"`}},
		{[]string{"quarantine.lua", "--event", "AfterFileUpload", "--path", "/eicar.com.txt"}, 0,
			[]string{"quarantined upload /eicar.com.txt", "refused", "blocked:                 yes"}},
		{[]string{"hide-temp-files.lua", "--event", "OnDirList", "--path", "/docs"}, 0, []string{"list /docs: ok"}},
	} {
		args := []string{"script", "run"}
		for _, a := range c.args {
			if strings.HasSuffix(a, ".lua") {
				a = filepath.Join(dir, a)
			}
			args = append(args, a)
		}
		code, stdout, stderr := runCmd(t, "", args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", c.args, code, c.code, stdout, stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, w, stdout)
			}
		}
	}
}

func TestScriptRunEveryEvent(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ev.lua")
	src := "Log('ran ' .. EventHandler() .. ' session=' .. tostring(Session ~= nil) .. ' path=' .. CtxRelPath())\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{"OnNewConnection", "BeforeSendSoftwareID", "OnAuthRequest", "OnAuthPassword", "OnAuthPKI",
		"OnAuthInteractiveSetQuestions", "OnAuthInteractive", "OnAuthFail", "OnAuthSuccess", "BeforeOpenSFTP",
		"BeforeOpenCmd", "OnDirList", "BeforeFileUpload", "AfterFileUpload", "BeforeFileDownload", "AfterFileDownload",
		"BeforeFileDelete", "AfterFileDelete", "BeforeFileRename", "AfterFileRename", "BeforeDirCreate", "AfterDirCreate",
		"BeforeDirDelete", "AfterDirDelete", "OnTransferError", "OnProtectorStrike", "OnBlocklistAdd", "OnBlocklistHit",
		"OnConnectionClose"} {
		code, stdout, stderr := runCmd(t, "", "script", "run", file, "--event", ev)
		if code != 0 || !strings.Contains(stdout, "ran "+ev+" ") {
			t.Errorf("%s: exit %d\n%s%s", ev, code, stdout, stderr)
		}
	}
}

func TestScriptRunFailures(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	loop := write("loop.lua", "while true do end\n")
	code, stdout, stderr := runCmd(t, "", "script", "run", loop, "--event", "BeforeFileDelete", "--timeout", "100ms")
	if code != 1 || !strings.Contains(stdout, "timed out after 100ms") || !strings.Contains(stdout, "blocked:                 yes") {
		t.Errorf("loop: exit %d\n%s%s", code, stdout, stderr)
	}
	bad := write("bad.lua", "Log('x'\nlocal = 1\n")
	code, _, stderr = runCmd(t, "", "script", "run", bad, "--event", "OnAuthSuccess")
	if code != 1 || !strings.Contains(stderr, "bad.lua:2:") {
		t.Errorf("syntax error: exit %d, stderr %s", code, stderr)
	}
	ban := write("ban.lua", "Terminate(true)\n")
	code, stdout, _ = runCmd(t, "", "script", "run", ban, "--event", "OnAuthSuccess", "--ip", "198.51.100.9")
	if code != 0 || !strings.Contains(stdout, "terminated:              yes (addToBlockList=true)") ||
		!strings.Contains(stdout, "banned:                  yes") {
		t.Errorf("terminate: exit %d\n%s", code, stdout)
	}
	if code, _, _ := runCmd(t, "", "script", "run", ban, "--event", "OnNoSuchThing"); code != 2 {
		t.Errorf("unknown event: exit %d, want 2", code)
	}
	if code, _, _ := runCmd(t, "", "script", "run", "--event", "OnAuthSuccess"); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
}

func TestCheckReportsScriptErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"ok.lua": "Log('ok')\n", "x.lua": "local a = 1\n\nif a then Log('x' .. ) end\n",
		"y.lua": "Log(\n", "z.js": "Log('x');\n"} {
		if err := os.WriteFile(filepath.Join(dir, "scripts", name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := `sites:
  - name: main
    listeners:
      - {protocol: sftp, address: "127.0.0.1:0"}
    vfs:
      - {name: home, type: memory}
    users:
      - id: alice
        password: "plain:pw"
        home: {vfs: home}
        event_handlers:
          - {event: OnAuthSuccess, script: y.lua}
    event_handlers:
      - {event: OnAuthSuccess, script: ok.lua}
      - {event: BeforeFileUpload, script: x.lua}
      - {event: BeforeFileUpload, script: z.js}
`
	file := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", "check", "-c", file)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{"scripts/x.lua:3: ", "scripts/y.lua:2: ", "2 problem(s) found"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "ok.lua") {
		t.Errorf("a good script is reported:\n%s", stderr)
	}
}
