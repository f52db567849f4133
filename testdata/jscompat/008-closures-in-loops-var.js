var fs = [];
for (var i = 0; i < 3; i++) { fs.push(function () { return i; }); }
Log(fs[0]() + "," + fs[1]() + "," + fs[2]());
var hs = [];
[1, 2, 3].forEach(function (v) { hs.push(function () { return v; }); });
Log(hs[0]() + hs[2]());
