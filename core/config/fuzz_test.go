package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and that every problem it reports can be located:
// it names a file and says something (a key or a message).
//
//	go test -run='^$' -fuzz=FuzzParse ./core/config
func FuzzParse(f *testing.F) {
	f.Add(Default())
	for _, name := range []string{"../../testdata/bad-config.yaml", filepath.Join(testDir, "full.yaml")} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"---\n",
		"sites: []\n",
		"sites:\n  - name: x\n\tlisteners: []\n",
		head + "    limitz: {}\n",
		head + user + "        password: plain:hunter2\n        allow_from: [10.0.0.300/8]\n",
		head + user + "        folders:\n          \"/a/../b\": {vfs: nope, permissions: []}\n",
		head + "    limits: &l {idle_timeout: 5}\n    protector: {<<: [*l, *l]}\n",
		"sites:\n  - &s\n    <<: *s\n",
		"a: &a [*a]\nsites: *a\n",
		"sites: [{name: x, listeners: [{protocol: ftp, address: '[::1]:21'}]}]\n",
		"? [a]\n: b\n",
		"sites: !!binary aGVsbG8=\n",
		"log: {level: 1, format: true, file: 2.5}\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml", dir)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			checkProblems(t, cfg.Warnings)
			return
		}
		if cfg != nil {
			t.Fatal("config returned with an error")
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if len(e.Problems) == 0 {
			t.Fatal("*Error without problems")
		}
		checkProblems(t, e.Problems)
		checkProblems(t, e.Warnings)
	})
}

func checkProblems(t *testing.T, ps []Problem) {
	t.Helper()
	for _, p := range ps {
		if p.File == "" || (p.Key == "" && p.Msg == "") || p.Msg == "" || p.Line < 0 {
			t.Fatalf("unlocatable problem %#v", p)
		}
	}
}
