var out = [];
for (var i = 0; i < 10; i++) {
  if (i % 2) continue;
  if (i > 6) break;
  out.push(i);
}
Log(out.join(","));
var j = 0;
while (true) { j++; if (j < 5) continue; break; }
Log(j);
