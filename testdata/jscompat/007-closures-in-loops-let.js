var fs = [];
for (let i = 0; i < 3; i++) { fs.push(function () { return i; }); }
Log(fs[0]() + "," + fs[1]() + "," + fs[2]());
var gs = [];
for (let j = 0; j < 3; j++) { gs.push(() => j * 10); j += 0; }
Log(gs.map(function (g) { return g(); }).join(" "));
