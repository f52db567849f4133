package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wharf check lists every use of a Syncplify name that wharf does not implement, by name,
// with its line and column, in Lua and JS scripts; a secret that cannot be read is a warning.
func TestCheckListsSyncplifyNames(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	scripts := map[string]string{
		"ok.js":      "{ var v = GetCurrentVFS(); Log(GetSecret('hook')); }\n",
		"push.js":    "{\n  var cli = new SftpClient();\n  cli.Options.UploadPolicy = OverwriteIfNewer;\n}\n",
		"legacy.lua": "AddToLog(ObjectName)\n",
	}
	for name, src := range scripts {
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
    secrets:
      hook: {env: WHARF_TEST_CHECK_UNSET}
    event_handlers:
      - {event: OnAuthSuccess, script: ok.js}
      - {event: AfterFileUpload, script: push.js}
      - {event: AfterFileUpload, script: legacy.lua}
`
	file := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", "check", "-c", file)
	for _, want := range []string{
		"scripts/push.js:2:17: SftpClient is a Syncplify class (v7.0.16+) that wharf does not implement",
		"scripts/push.js:3:30: OverwriteIfNewer is a Syncplify constant (v7.0.16+) that wharf does not implement",
		"scripts/legacy.lua:1:1: AddToLog is a Syncplify function (v4/v5) that wharf does not implement; Log()",
		"scripts/legacy.lua:1:10: ObjectName is a Syncplify object (v4/v5) that wharf does not implement; Session.GetAbsPath()",
		"4 problem(s) found",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	if code != 1 || strings.Contains(stderr, "ok.js") {
		t.Errorf("exit %d\n%s", code, stderr)
	}

	// With the scripts fixed, the unset secret is a warning, and the config checks out.
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "scripts", "push.js"), []byte("Log('x');\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "scripts", "legacy.lua"), []byte("Log('y')\n"), 0o600))
	code, _, stderr = runCmd(t, "", "check", "-c", file)
	if code != 0 || !strings.Contains(stderr, `warning: secret "hook": environment variable WHARF_TEST_CHECK_UNSET is not set`) {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}
