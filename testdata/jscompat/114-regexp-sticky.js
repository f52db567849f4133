// The sticky flag matches only at lastIndex.
var re = /foo/y;
Log(re.test("foofoo bar"), re.lastIndex);
Log(re.test("foofoo bar"), re.lastIndex);
Log(re.test("foofoo bar"), re.lastIndex);
re.lastIndex = 1;
Log(re.exec("xfoo") !== null, re.lastIndex);
var tok = /\s*(\d+|[-+*\/()])/y;
var src = "12 + (3*4) - 5", out = [], m;
while ((m = tok.exec(src)) !== null) out.push(m[1]);
Log(out.join(" "), tok.lastIndex);
Log("aaXaa".replace(/a/gy, "b"), "aaXaa".replace(/a/y, "b"));
Log(/b/y.test("ab"), /b/.test("ab"));
