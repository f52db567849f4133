var out = [];
for (var v of [1, 2, 3, 4, 5]) {
  if (v == 2) continue;
  if (v == 4) break;
  out.push(v);
}
Log(out.join(","));
var fs = [];
for (let k in {a: 1, b: 2}) fs.push(() => k);
Log(fs.map(f => f()).join(""));
var n = 0;
lbl: do {
  n++;
  if (n < 3) continue lbl;
  break;
} while (true);
Log(n);
