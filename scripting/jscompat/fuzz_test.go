package jscompat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yuin/gopher-lua/parse"
)

// FuzzTranslate: the translator never panics, and what it accepts is Lua that compiles.
func FuzzTranslate(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/jscompat/*.js")
	for _, file := range files {
		if src, err := os.ReadFile(file); err == nil {
			f.Add(string(src))
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		done := make(chan struct{})
		var code string
		var err error
		go func() {
			defer close(done)
			code, err = Translate([]byte(src), "fuzz.js")
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("translation does not end: %q", src)
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if _, err := parse.Parse(strings.NewReader(code), "fuzz.js"); err != nil {
			t.Fatalf("generated Lua does not parse: %v\n--- js\n%s\n--- lua\n%s", err, src, numbered(code))
		}
	})
}
