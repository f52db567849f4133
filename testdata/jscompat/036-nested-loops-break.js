var out = [];
for (var i = 0; i < 3; i++) {
  for (var j = 0; j < 3; j++) {
    if (j == 2) break;
    if (i == 1) continue;
    out.push("" + i + j);
  }
}
Log(out.join(" "));
