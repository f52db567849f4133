Log(typeof x);
Log(x);
var x = 5;
Log(x);
function f() { Log(y); var y = 2; return y; }
Log(f());
Log(g());
function g() { return "hoisted"; }
