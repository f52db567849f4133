Log(0 || "default");
Log("set" || "default");
Log(1 && "second");
Log(0 && "second");
Log(null ?? "nullish");
Log(0 ?? "not used");
Log("" || null);
var calls = 0;
function side() { calls++; return true; }
false && side();
true || side();
Log(calls);
var x = null;
Log(x && x.prop);
