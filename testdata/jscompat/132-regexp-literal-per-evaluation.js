// Each evaluation of a literal makes a new RegExp: a g literal in a loop starts at 0.
var hits = [];
for (var i = 0; i < 3; i++) {
  var re = /a/g;
  hits.push(re.test("a") + ":" + re.lastIndex);
}
Log(hits.join(" "));
function check(r, s) { return r.test(s); }
var shared = /b/g;
Log(check(shared, "bb"), check(shared, "bb"), check(shared, "bb"));
var rules = {pdf: /\.pdf$/i, txt: /\.txt$/i};
Log(rules.pdf.test("A.PDF"), rules["txt"].test("a.pdf"));
var list = [/^a/, /b$/];
Log(list.map(function (r) { return r.test("ab"); }).join(","), list[1].source);
