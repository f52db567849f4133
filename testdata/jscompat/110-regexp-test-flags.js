// RegExp.prototype.test with flags: the deny-exe filter and friends.
var names = ["setup.exe", "SETUP.EXE", "readme.txt", "archive.exe.zip", "x.Exe", ".exe", "exe"];
for (var i = 0; i < names.length; i++) {
  Log(names[i], /\.exe$/i.test(names[i]), /\.exe$/.test(names[i]), /^[a-z]+\./.test(names[i]));
}
Log(/^abc$/m.test("x\nabc\ny"), /^abc$/.test("x\nabc\ny"));
Log(/a.c/.test("a\nc"), /a.c/s.test("a\nc"));
Log(/colou?r/i.test("The COLOR red"), /\d{3}-\d{4}/.test("call 555-1234 now"));
Log(/x/.test("y"), /(?:)/.test(""), /^$/.test(""));
