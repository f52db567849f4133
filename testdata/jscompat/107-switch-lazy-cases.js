var log = [];
function c(v) { log.push("case " + v); return v; }
switch (2) {
  case c(1): Log("one"); break;
  case c(2): Log("two"); break;
  case c(3): Log("three"); break;
}
Log(log.join(","));
switch (true) {
  case 1 > 2: Log("no"); break;
  case 2 > 1: Log("yes"); break;
}
var x = "b";
switch (x) {
  default: Log("default first");
  case "a": Log("a");
}
