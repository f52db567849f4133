package jscompat

import (
	"strings"
	"testing"
	"time"
)

// Positions count bytes, as every string index in wharf does, and a pattern matches whole
// UTF-8 characters: a match never starts or ends inside one, and bytes that are not UTF-8
// keep their place. (The differential corpus is ASCII, where bytes and UTF-16 units agree.)
func TestRegexpBytesAndCharacters(t *testing.T) {
	src := `
Log("h\u00e9llo w\u00f6rld".search(/w/), "h\u00e9llo".match(/l+/).index);
Log("\u00e9".match(/./)[0] === "\u00e9", "\u00e9".match(/./)[0].length, /^.$/.test("\u00e9"));
Log("\u65e5\u672c\u8a9e".replace(/\u672c/, "x"), "a\u00e9b".split(/(?:)/).length);
var r = /./g;
r.exec("\u00e9a");
Log(r.lastIndex, r.exec("\u00e9a")[0], r.lastIndex);
Log(/^.$/u.test("\ud83d\ude00"), /\u{1F600}/u.test("\ud83d\ude00"));
Log(JSON.stringify("\u00e9\u00e9".match(/(?:)/g)));
var s = "ab" + String.fromCharCode(255) + "c";
Log(/c/.exec(s).index, s.replace(/b/, "-").length);
r = /x/g;
r.lastIndex = 1;
Log(r.test("\u00e9x"), r.lastIndex);
`
	got, code, err := runJS(t, src, "bytes.js")
	if err != nil {
		t.Fatalf("%v\n%s", err, numbered(code))
	}
	want := strings.Join([]string{
		"7 3",
		"true 2 true",
		"\u65e5x\u8a9e 3",
		"2 a 3",
		"true true",
		`["","",""]`,
		"4 5", // String.fromCharCode(255) is U+00FF, two bytes
		"true 3",
	}, "\n") + "\n"
	if got != want {
		t.Errorf("got:\n%swant:\n%s", got, want)
	}
}

// A search that backtracks catastrophically stops at the state's deadline, with an error
// that names it; so does one that starts after the deadline.
func TestRegexpStopsAtDeadline(t *testing.T) {
	for _, c := range []struct {
		name     string
		deadline time.Duration
		src      string
	}{
		{"catastrophic", 300 * time.Millisecond, `/(a+)+$/.test("a".repeat(40) + "b");`},
		{"replace", 300 * time.Millisecond, `("a".repeat(40) + "b").replace(/(a|aa)+$/g, "");`},
		{"after the deadline", -time.Second, `/a/.test("a");`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, err := Translate([]byte(c.src), "slow.js")
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			deadline := time.Now().Add(c.deadline)
			L := stubStateWith(t, &out, Options{Deadline: func() time.Time { return deadline }})
			defer L.Close()
			fn, err := L.Load(strings.NewReader(code), "slow.js")
			if err != nil {
				t.Fatal(err)
			}
			L.Push(fn)
			err = L.PCall(0, 0, nil)
			if err == nil || !strings.Contains(err.Error(), "regular expression: timed out") {
				t.Fatalf("run: %v, want a timeout", err)
			}
		})
	}
}

// Results are bounded: a replacement's result by the 1 MiB cap of one library call, and the
// patterns by their length.
func TestRegexpBounds(t *testing.T) {
	for _, c := range []struct{ src, err string }{
		// (Not /x/g: literal text goes to the string functions, which the engine caps.)
		{`"x".repeat(1048576).replace(/[x]/g, "yy");`, "replace: result longer than 1048576 bytes"},
		{`"x".repeat(2000).replace(/[x]/g, "$'");`, "replace: result longer than 1048576 bytes"},
		{`"x".repeat(2000).replace(/[x]/g, function () { return "y".repeat(1000); });`, "replace: result longer than 1048576 bytes"},
		{`new RegExp("a".repeat(40000));`, "pattern longer than 32768 bytes"},
	} {
		_, _, err := runJS(t, c.src, "big.js")
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want %q", c.src, err, c.err)
		}
	}
}
