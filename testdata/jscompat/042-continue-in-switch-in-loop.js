var out = [];
for (var i = 0; i < 5; i++) {
  switch (i) {
    case 1: continue;
    case 3: out.push("three"); break;
    default: out.push(i);
  }
  out.push("end" + i);
}
Log(out.join(","));
var j = 0;
while (j < 4) {
  j++;
  switch (j) { case 2: continue; }
  Log("j=" + j);
}
