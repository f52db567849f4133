var fs = [];
for (var i = 0; i < 3; i++) {
  let j = i * 2;
  fs.push(function () { return j; });
}
Log(fs.map(function (f) { return f(); }).join(","));
var k = 0;
while (k < 2) { let m = k; k++; fs.push(() => m); }
Log(fs[3]() + " " + fs[4]());
