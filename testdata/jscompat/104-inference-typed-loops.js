var total = 0, text = "", count = 0;
var words = "alpha beta gamma".split(" ");
for (var i = 0; i < words.length; i++) {
  total += words[i].length;
  text = text + words[i].charAt(0);
  if (text) count++;
}
Log(total + " " + text + " " + count);
var z = 0;
if (z) Log("zero is truthy?"); else Log("zero is falsy");
var nan = 0 / 0;
if (nan) Log("NaN truthy?"); else Log("NaN falsy");
var e = "";
Log(e ? "empty truthy?" : "empty falsy");
var parts = [];
for (var k = 10; k > 0; k -= 4) parts.push(k);
Log(parts.length + ":" + parts.join(","));
Log(parts[0] + parts[1]);
Log(parts[5]);
