// Variables read while still undefined must not be treated as typed.
var s;
for (var i = 0; i < 3; i++) {
  if (i > 0) Log(s + "!");
  s = "v" + i;
}
var t;
if (s.length > 1) { t = "long"; }
Log(t ? "t set" : "t unset");
Log(t + "|");
var u;
if (false) { u = "never"; }
Log(u ? "u set" : "u unset");
Log("u=" + u);
function readLater() { return later + 1; }
Log(readLater());
var later = 41;
Log(readLater());
var n = 0;
n = n + "1";
Log(n + 1);
var m = "5";
m = m * 2;
Log(m + 1);
var lb;
blk: {
  if (m > 5) break blk;
  lb = "assigned";
}
Log("lb=" + lb);
