// String.prototype.match: like exec without g, every match's text with g, null when none.
var s = "The year 1999 and 2024, and 42.";
var one = s.match(/\d+/);
Log(one[0], one.index, one.length);
Log(s.match(/\d+/g));
Log(JSON.stringify(s.match(/\d+/g)));
Log(s.match(/xyz/), s.match(/xyz/g));
Log("a.b.c".match(".").length, "a.b.c".match("\\.").index);
Log(JSON.stringify("aBc".match(/[a-z]/gi)));
var m = "key=value".match(/(\w+)=(\w+)/);
Log(m[1], m[2]);
Log("".match(/a*/g).length, JSON.stringify("".match(/a*/g)));
