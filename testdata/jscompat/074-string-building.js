var s = "";
for (var i = 0; i < 5; i++) s += i;
Log(s);
var parts = [];
for (var c = 97; c < 100; c++) parts.push(String.fromCharCode(c));
Log(parts.join(""));
Log("abc".concat("d", 1));
