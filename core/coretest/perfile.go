package coretest

import (
	"os"
	"slices"
	"testing"
)

// RunPerFile runs one subtest per file of dir, with that file's case. It fails when dir holds
// fewer than atLeast files, when a file has no case (a new script must come with its test)
// and when a case names a file that is not there.
func RunPerFile[C any](t *testing.T, dir string, atLeast int, cases map[string]C, run func(t *testing.T, name string, c C)) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) < atLeast {
		t.Errorf("%d files in %s, want at least %d", len(names), dir, atLeast)
	}
	for name := range cases {
		if !slices.Contains(names, name) {
			t.Errorf("a case for %s, which is not in %s", name, dir)
		}
	}
	for _, name := range names {
		c, ok := cases[name]
		if !ok {
			t.Errorf("%s has no case in this test", name)
			continue
		}
		t.Run(name, func(t *testing.T) { run(t, name, c) })
	}
}
