var u;
var n = null;
Log(u);
Log(n);
Log(u === undefined);
Log(n === null);
Log(u == null);
Log(String(null) + String(undefined));
function noReturn() {}
Log(noReturn());
var o = {a: undefined};
Log(o.a);
Log(o.b);
Log("a" in o);
Log("b" in o);
