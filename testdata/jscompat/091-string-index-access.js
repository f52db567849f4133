var s = "hello";
Log(s[0] + s[4] + s[10]);
Log(s["length"]);
var rev = "";
for (var i = s.length - 1; i >= 0; i--) rev += s[i];
Log(rev);
Log(s.split("").reverse().join(""));
