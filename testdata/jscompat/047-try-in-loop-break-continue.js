var out = [];
for (var i = 0; i < 5; i++) {
  try {
    if (i == 1) continue;
    if (i == 3) break;
    out.push(i);
  } finally {
    out.push("f" + i);
  }
}
Log(out.join(","));
