var log = [];
function f(x) { log.push(x); return x; }
f(1) + f(2) * f(3);
var o = {};
o[f("k")] = f("v");
[f("a"), f("b")];
var i = 0;
var r = [i, i++, i];
Log(log.join(",") + " " + r.join(","));
