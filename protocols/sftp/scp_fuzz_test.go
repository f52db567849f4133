package sftp

import (
	"io/fs"
	"path"
	"strings"
	"testing"
)

// FuzzSCP feeds arbitrary text to the two parsers that read what an SCP client sends: the
// exec command line ("scp -t -- /dir") and the sink's C/D/E/T lines. Neither may panic, and
// what they accept must keep the promises the transfer code relies on: exactly one
// direction, a path to work on, one-element file names, sane modes, sizes and times.
func FuzzSCP(f *testing.F) {
	for _, s := range []string{
		"scp -t /", "scp -f /a.txt /b.txt", "scp -r -p -t -- '/dir with space'", "scp -v -d -t \"/a\\\"b\"",
		"/usr/bin/scp -prt ~/x", "scp -t", "scp -x -t /", "scp -t 'unterminated", "scp -f a\\\nb", "sh -c 'scp -t /'",
		"C0644 12 file.txt", "D0755 0 dir", "E", "T1600000000 0 1600000000 0", "\x01scp: warning", "\x02scp: fatal",
		"C0644 1 ../escape", "C0644 -1 neg", "C9999 1 x", "D0755 5 d", "C0644 1 a/b", "T1 2 3", "T1 1000000 1 0",
		"C0644 1 \x00", "", "X", "E extra",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if o, err := parseSCPCommand(s); err == nil {
			if o.sink == o.source {
				t.Fatalf("%q: sink %v source %v", s, o.sink, o.source)
			}
			if len(o.paths) == 0 || o.sink && len(o.paths) != 1 {
				t.Fatalf("%q: paths %q", s, o.paths)
			}
		}
		if words, err := splitWords(s); err == nil {
			// Words never keep the separators a shell would have split on, outside quotes.
			if !strings.ContainsAny(s, "'\"\\") {
				for _, w := range words {
					if w == "" || strings.ContainsAny(w, " \t\n") {
						t.Fatalf("%q: word %q", s, w)
					}
				}
			}
		}
		l, err := parseSCPLine(s)
		if err != nil {
			return
		}
		switch l.kind {
		case 'C', 'D':
			if l.name == "" || l.name == "." || l.name == ".." || strings.ContainsAny(l.name, "/\x00") ||
				path.Base(l.name) != l.name {
				t.Fatalf("%q: name %q is not one path element", s, l.name)
			}
			if l.size < 0 || l.kind == 'D' && l.size != 0 {
				t.Fatalf("%q: size %d", s, l.size)
			}
			if l.mode&^fs.ModePerm != 0 {
				t.Fatalf("%q: mode %v has more than permission bits", s, l.mode)
			}
		case 'T':
			if l.times == nil || l.times.mtime.Unix() < 0 || l.times.atime.Unix() < 0 {
				t.Fatalf("%q: times %+v", s, l.times)
			}
		case 'E', 1, 2:
		default:
			t.Fatalf("%q: accepted a line of kind %q", s, l.kind)
		}
	})
}
