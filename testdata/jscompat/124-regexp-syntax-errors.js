// A bad pattern given to RegExp throws a SyntaxError that a script can catch.
var bad = ["(", "[a-", "a{2,1}", "*", "(?<n>a)(?<n>b)", "\\k<missing>(?<x>a)"];
for (var i = 0; i < bad.length; i++) {
  try {
    new RegExp(bad[i]);
    Log(i, "compiled");
  } catch (e) {
    Log(i, e.name, typeof e.message);
  }
}
try {
  new RegExp("a", "gg");
} catch (e) {
  Log("flags", e.name);
}
try {
  RegExp("a", "z");
} catch (e) {
  Log("flag z", e.name);
}
Log("still running");
