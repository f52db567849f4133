package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelpExitsZero is issue #23 item 5: -h and --help print the command's usage and exit 0
// on every command, as they do on `wharf` itself.
func TestHelpExitsZero(t *testing.T) {
	cmds := [][]string{
		{"serve"}, {"check"}, {"script"}, {"script", "run"}, {"script", "translate"}, {"sessions"},
		{"sessions", "kick"}, {"bans"}, {"bans", "add"}, {"bans", "remove"}, {"bans", "list"}, {"reload"},
		{"health"}, {"hash-password"}, {"config"}, {"config", "print-default"}, {"config", "print"},
		{"cluster"}, {"cluster", "status"}, {"cluster", "migrate"},
	}
	for _, c := range cmds {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, c...), h)
			code, out, errOut := runCmd(t, "", args...)
			if code != 0 {
				t.Errorf("wharf %s: exit %d, want 0\n%s%s", strings.Join(args, " "), code, out, errOut)
				continue
			}
			if !strings.Contains(strings.ToLower(out+errOut), "usage") {
				t.Errorf("wharf %s printed no usage:\n%s%s", strings.Join(args, " "), out, errOut)
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		if code, out, _ := runCmd(t, "", args...); code != 0 || !strings.Contains(out, "wharf bans add") {
			t.Errorf("wharf %v: exit %d\n%s", args, code, out)
		}
	}
	// A wrong flag is still a usage error.
	if code, _, _ := runCmd(t, "", "sessions", "--no-such-flag"); code != 2 {
		t.Errorf("a wrong flag: exit %d, want 2", code)
	}
}

// TestHashPasswordRefusesArgument: `wharf hash-password secret` ignored its argument and
// waited for stdin; it must refuse, and say how to give the password.
func TestHashPasswordRefusesArgument(t *testing.T) {
	code, out, errOut := runCmd(t, "typed-password\n", "hash-password", "s3cret")
	if code != 2 || out != "" || !strings.Contains(errOut, "shell history") || !strings.Contains(errOut, "wharf hash-password < file") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The flag after no argument still works.
	if code, out, _ := runCmd(t, "pw\n", "hash-password", "--bcrypt"); code != 0 || !strings.HasPrefix(out, "$2") {
		t.Fatalf("--bcrypt: exit %d %q", code, out)
	}
}

// TestCheckReportsYAMLAndScriptProblemsTogether is issue #23 item 5: a config with a typo'd
// key and a script with a syntax error is reported whole in one run.
func TestCheckReportsYAMLAndScriptProblemsTogether(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"broken.lua": "Log('x' .. )\n", "user.lua": "if then\n", "fine.lua": "Log('ok')\n"} {
		if err := os.WriteFile(filepath.Join(dir, "scripts", name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := `state_dir: ./state
sites:
  - name: main
    listeners:
      - {protocol: sftp, address: "127.0.0.1:0"}
    limits:
      max_conections: 10
    vfs:
      - {name: home, type: memory}
    users:
      - id: alice
        password: "plain:pw"
        home: {vfs: home}
        event_handlers:
          - {event: OnAuthSuccess, script: user.lua}
    event_handlers:
      - {event: OnAuthSuccess, script: fine.lua}
      - {event: BeforeFileUpload, script: broken.lua}
      - {event: OnNoSuchEvent, script: fine.lua}
      - {event: OnAuthFail, script: missing.lua}
`
	file := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", "check", "-c", file)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"max_conections", "OnNoSuchEvent", "missing.lua", "scripts/broken.lua:1:", "scripts/user.lua:1:", "5 problem(s) found"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "fine.lua:") {
		t.Errorf("a good script is reported:\n%s", stderr)
	}
}

// TestAdminCommandsSurviveATypo is issue #23 item 4: health, sessions, bans and reload need
// only the admin address and token, so a typo elsewhere in the file being edited does not
// break them (the Docker health check of a healthy server); flags replace the file.
func TestAdminCommandsSurviveATypo(t *testing.T) {
	dir := t.TempDir()
	cfgPath := opsConfig{}.write(t, dir)
	srv := startOps(t, cfgPath)
	c := sftpClient(t, srv.addrs["SFTP"], "alice", alicePassword)
	if _, err := c.Getwd(); err != nil {
		t.Fatal(err)
	}
	// The file is being edited: a typo'd key the loader refuses.
	opsConfig{site: "    limits:\n      max_conections: 5\n"}.write(t, dir)
	if code, _, errOut := runCmd(t, "", "check", "-c", cfgPath); code != 1 || !strings.Contains(errOut, "max_conections") {
		t.Fatalf("the file should be invalid: %d %s", code, errOut)
	}
	for _, args := range [][]string{
		{"health", "-c", cfgPath},
		{"sessions", "-c", cfgPath},
		{"bans", "-c", cfgPath},
		{"bans", "list", "-c", cfgPath, "-json"},
	} {
		if code, out, errOut := runCmd(t, "", args...); code != 0 {
			t.Errorf("wharf %v with a typo in the file: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	// reload reaches the server, which refuses the file and says why.
	code, _, errOut := runCmd(t, "", "reload", "-c", cfgPath)
	if code != 1 || !strings.Contains(errOut, "refused the new configuration") || !strings.Contains(errOut, "max_conections") {
		t.Errorf("reload of a bad file: exit %d %s", code, errOut)
	}

	// Without the file: the address and the token file on the command line.
	tok := filepath.Join(dir, "state", "admin.token")
	t.Chdir(t.TempDir())
	if code, out, errOut := runCmd(t, "", "health", "--admin-address", srv.metrics); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("health --admin-address: %d %q %s", code, out, errOut)
	}
	code, out, errOut := runCmd(t, "", "sessions", "--admin-address", srv.metrics, "--token-file", tok, "-json")
	if code != 0 || !strings.Contains(out, `"user": "alice"`) {
		t.Fatalf("sessions with flags: %d %s %s", code, out, errOut)
	}
	id := out[strings.Index(out, `"id": "`)+7:]
	id = id[:strings.Index(id, `"`)]
	// Flags after the positional argument.
	if code, out, errOut := runCmd(t, "", "sessions", "kick", id, "--admin-address", srv.metrics, "--token-file", tok); code != 0 || !strings.Contains(out, id) {
		t.Errorf("sessions kick ID --flags: %d %s %s", code, out, errOut)
	}

	// A file that is not even YAML: the error says how to do without it, and the flags do.
	if err := os.WriteFile(cfgPath, []byte("sites: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd(t, "", "health", "-c", cfgPath); code != 1 || !strings.Contains(errOut, "--admin-address") {
		t.Errorf("health on a broken file: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "health", "-c", cfgPath, "--admin-address", srv.metrics); code != 0 {
		t.Errorf("health on a broken file with --admin-address: %d %s", code, errOut)
	}
}

// TestReloadReportsWhatNeedsARestart is issue #23 item 6: `wharf reload` applies what it can
// and tells the caller, with exit status 3, which changes need a restart.
func TestReloadReportsWhatNeedsARestart(t *testing.T) {
	dir := t.TempDir()
	cfgPath := opsConfig{}.write(t, dir)
	srv := startOps(t, cfgPath)
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(data), `      - { protocol: ftp, address: "127.0.0.1:0" }`,
		`      - { protocol: ftp, address: "127.0.0.1:0" }
      - { protocol: ftps, address: "127.0.0.1:0" }`, 1)
	next += "      - id: bob\n        password: \"plain:bob-pw\"\n        home: { vfs: home, permissions: [all] }\n"
	next += "  - name: second\n    listeners:\n      - { protocol: sftp, address: \"127.0.0.1:0\" }\n    vfs:\n      - { name: m, type: memory }\n"
	if err := os.WriteFile(cfgPath, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "", "reload", "-c", cfgPath)
	if code != 3 {
		t.Fatalf("reload with restart-only changes: exit %d, want 3\n%s%s", code, out, errOut)
	}
	for _, want := range []string{`changing the listeners of site "test"`, `adding site "second"`, "need a restart"} {
		if !strings.Contains(out+errOut, want) {
			t.Errorf("reload output lacks %q:\n%s%s", want, out, errOut)
		}
	}
	// What could be applied was: bob logs in.
	if c, err := dialSSH(t, srv.addrs["SFTP"], "bob", "bob-pw"); err != nil {
		t.Errorf("the new user cannot log in: %v", err)
	} else {
		c.Close()
	}
	// A reload with nothing left over exits 0.
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "", "reload", "-c", cfgPath); code != 0 || strings.TrimSpace(out) != "configuration reloaded" {
		t.Errorf("plain reload: exit %d %s %s", code, out, errOut)
	}
}

// TestCheckFindsWhatServeWouldFailOn is issue #23 item 1 without another user: paths that
// cannot be created (a regular file in the way) are reported by check, as serve would fail
// on them, and check leaves nothing behind.
func TestCheckFindsWhatServeWouldFailOn(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "blocker"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `state_dir: ./blocker/state
log: {file: ./blocker/logs/wharf.log}
audit: {file: ./logs/audit.log}
sites:
  - name: main
    listeners:
      - {protocol: sftp, address: "127.0.0.1:0"}
    vfs:
      - {name: home, type: disk, root: "./blocker/data/{user}"}
      - {name: ok, type: disk, root: "./data/shared"}
    users:
      - id: alice
        password: "plain:pw"
        home: {vfs: home}
`
	file := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", "check", "-c", file)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"state_dir: " + filepath.Join(dir, "blocker", "state"), "log.file: ", "sites[0].vfs[0].root: " + filepath.Join(dir, "blocker", "data"), "3 problem(s) found"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "blocker" && e.Name() != "wharf.yaml" {
			t.Errorf("check left %s behind", e.Name())
		}
	}
	if code, _, errOut := runCmd(t, "", "serve", "-c", file); code != 1 || !strings.Contains(errOut, "not a directory") {
		t.Errorf("serve on the same file: exit %d %s", code, errOut)
	}
}
