// String.prototype.matchAll: every match with its groups.
var text = "a=1, b=22, c=333";
for (const m of text.matchAll(/(\w)=(\d+)/g)) {
  Log(m[0], m[1], m[2], m.index);
}
var all = Array.from("x1y2z3".matchAll(/[a-z](\d)/g), function (m) { return m[1]; });
Log(all.join("+"));
var named = [];
for (const m of "k1:v1;k2:v2".matchAll(/(?<k>\w+):(?<v>\w+)/g)) named.push(m.groups.k + "->" + m.groups.v);
Log(named.join(" "));
try {
  "abc".matchAll(/b/);
  Log("no error");
} catch (e) {
  Log(e.name);
}
var n = 0;
for (const m of "aaa".matchAll("a")) n++;
Log(n);
