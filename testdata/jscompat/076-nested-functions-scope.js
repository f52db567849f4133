var x = "global";
function outer() {
  var x = "outer";
  function inner() { return x; }
  return inner();
}
Log(outer());
function shadow(x) { x = x + "!"; return x; }
Log(shadow("arg") + " " + x);
