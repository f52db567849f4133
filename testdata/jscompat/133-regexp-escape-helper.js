// Building an expression from user text: escape it first.
function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
var raw = "a.b*c (1+1)? [x] {y} $z ^w |v \\u";
var esc = escapeRe(raw);
Log(esc);
Log(new RegExp("^" + esc + "$").test(raw), new RegExp(esc).test("aXb*c"));
function glob(pattern) {
  return new RegExp("^" + pattern.split("*").map(escapeRe).join(".*") + "$", "i");
}
var g = glob("*.tmp");
Log(g.test("x.TMP"), g.test("x.tmp.bak"), glob("report-*.csv").test("Report-2024.csv"), g.source);
