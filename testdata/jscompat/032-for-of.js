var s = 0;
for (var v of [1, 2, 3]) s += v;
Log(s);
for (const ch of "hey") Log(ch);
var fs = [];
for (let x of [1, 2]) fs.push(() => x);
Log(fs[0]() + fs[1]());
for (var w of [1, , 3]) Log(w);
