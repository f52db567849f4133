var out = [];
outer: for (var i = 0; i < 3; i++) {
  var j = 0;
  while (true) {
    j++;
    try {
      switch (j) {
        case 1: continue;
        case 2: if (i == 1) continue outer; break;
        default: break outer;
      }
    } finally {
      out.push(i + "" + j);
    }
    out.push("s" + j);
    if (j > 2) break;
  }
}
Log(out.join(","));
