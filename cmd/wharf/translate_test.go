package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScriptTranslate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, src string
		args      []string
		code      int
		stdout    string // a substring
		stderr    string
	}{
		{name: "deny", args: []string{"../../testdata/config/scripts/deny-exe.js"}, code: 0,
			stdout: "\nif (EventHandler() == \"BeforeFileRename\") then\n"},
		{name: "class", src: "var a = 1;\n    class A {}\n", code: 1, stderr: "class.js:2:5: unsupported: class declaration"},
		{name: "syntax", src: "if (x {\n", code: 1, stderr: "syntax.js:1:7: "},
		{name: "lua", args: []string{"x.lua"}, code: 2, stderr: "not a .js script"},
		{name: "usage", args: []string{}, code: 2, stderr: "usage:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.src != "" {
				args = []string{write(tc.name+".js", tc.src)}
			}
			code, stdout, stderr := runCmd(t, "", append([]string{"script", "translate"}, args...)...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
		})
	}
}

// wharf check reports a .js script's unsupported construct like a compiler, with its column.
func TestCheckReportsJSErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"ok.js": "Log('ok');\n", "x.js": "var a = 1;\n\nif (a) {\n    class B {}\n}\n"} {
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
      - {event: OnAuthSuccess, script: ok.js}
      - {event: BeforeFileUpload, script: x.js}
`
	file := filepath.Join(dir, "wharf.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", "check", "-c", file)
	if code != 1 || !strings.Contains(stderr, "scripts/x.js:4:5: unsupported: class declaration (handler of site main)") ||
		!strings.Contains(stderr, "1 problem(s) found") || strings.Contains(stderr, "ok.js") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}
