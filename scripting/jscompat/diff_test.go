package jscompat

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nodePrelude stands in for wharf's objects under Node.js, answering what stubState's do.
const nodePrelude = `
var Log = function () { __emit(Array.prototype.map.call(arguments, String).join(" ")); };
Log.Debug = Log.Info = Log.Warn = Log.Error = Log;
var Session = {
  GetID: function () { return "sess-42"; },
  GetUserID: function () { return "alice"; },
  GetProtocol: function () { return "SFTP"; },
  GetRelPath: function () { return "/in/report.PDF"; },
  GetUser: function () { return null; },
  BlockOperation: function () { __emit("[blocked]"); },
  GetAllCustomData: function () { return ["a", "b"]; },
  GetCustomData: function (i) { return i >= 0 && i < 2 ? ["a", "b"][i] : ""; },
};
function ExtractExt(p) { var i = p.lastIndexOf("."), j = p.lastIndexOf("/"); return i > j ? p.slice(i) : ""; }
function CtxRelPath() { return "/in/report.PDF"; }
function Greeter(name) { this.name = name; this.Punct = "!"; this.Count = 0; }
Greeter.prototype.Name = function (n) { this.name = n; return this; };
Greeter.prototype.Greet = function () { this.Count++; return "Hello, " + this.name + this.Punct; };
`

// nodeRunner runs each program of a list in a fresh context of one Node.js process (a
// process per program takes a quarter of a second) and prints what each logged and whether
// it threw, as JSON.
const nodeRunner = `
const fs = require("fs"), vm = require("vm");
const [prelude, ...files] = process.argv.slice(2).map(f => fs.readFileSync(f, "utf8"));
const names = process.argv.slice(3);
const results = {};
files.forEach((src, i) => {
  const out = [];
  const ctx = vm.createContext({__emit: s => out.push(s)});
  let error = "";
  try {
    vm.runInContext(prelude, ctx);
    vm.runInContext(src, ctx, {filename: names[i]});
  } catch (e) {
    error = String(e);
  }
  results[names[i]] = {out: out.map(l => l + "\n").join(""), error};
});
process.stdout.write(JSON.stringify(results));
`

type nodeResult struct {
	Out   string `json:"out"`
	Error string `json:"error"`
}

// TestDifferential runs every program of testdata/jscompat with Node.js and through the
// translator, and requires the same output. An uncaught exception must happen in both.
func TestDifferential(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("WHARF_E2E") == "1" {
			t.Fatal("WHARF_E2E=1 but node is not installed")
		}
		t.Skip("node is not installed")
	}
	files, err := filepath.Glob("../../testdata/jscompat/*.js")
	if err != nil || len(files) < 80 {
		t.Fatalf("corpus: %d programs, %v", len(files), err)
	}
	dir := t.TempDir()
	runner, prelude := filepath.Join(dir, "runner.js"), filepath.Join(dir, "prelude.js")
	must(t, os.WriteFile(runner, []byte(nodeRunner), 0o600))
	must(t, os.WriteFile(prelude, []byte(nodePrelude), 0o600))
	cmd := exec.Command(node, append([]string{runner, prelude}, files...)...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var results map[string]nodeResult
	must(t, json.Unmarshal(stdout.Bytes(), &results))
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".js"), func(t *testing.T) {
			want, ok := results[f]
			if !ok {
				t.Fatal("no result from node")
			}
			src, err := os.ReadFile(f)
			must(t, err)
			got, code, runErr := runJS(t, string(src), name)
			if _, ok := runErr.(*runError); runErr != nil && !ok {
				t.Fatalf("translate: %v", runErr)
			}
			if (want.Error != "") != (runErr != nil) {
				t.Errorf("node error: %q\nwharf error: %v", want.Error, runErr)
			}
			if got != want.Out {
				t.Errorf("output differs\n--- node\n%s--- wharf\n%s--- lua\n%s", want.Out, got, numbered(code))
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
