var out = [];
for (var i = 0; i < 5; i++) out.push(i);
Log(out.join(""));
for (var j = 10; j > 0; j -= 3) out.push(j);
Log(out.join(","));
for (var a = 0, b = 10; a < b; a += 2, b -= 2) Log(a + ":" + b);
var k = 0;
for (;;) { if (++k > 3) break; }
Log(k);
