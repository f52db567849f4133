var out = [];
outer: for (var i = 0; i < 3; i++) {
  for (var j = 0; j < 3; j++) {
    if (j == 1) continue outer;
    if (i == 2) break outer;
    out.push("" + i + j);
  }
}
Log(out.join(" "));
var n = 0;
loop1: while (true) { while (true) { n++; if (n > 3) break loop1; } }
Log(n);
