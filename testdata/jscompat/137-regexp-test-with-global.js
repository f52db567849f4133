// The classic pitfall: test with a g expression remembers where it stopped.
var re = /x/g;
var names = ["x1", "x2", "x3", "y"];
var out = [];
for (var i = 0; i < names.length; i++) out.push(re.test(names[i]));
Log(out.join(","));
var re2 = /x/;
out = [];
for (var j = 0; j < names.length; j++) out.push(re2.test(names[j]));
Log(out.join(","));
var g = /o/g;
Log(g.exec("foo").index, g.exec("foo").index, g.exec("foo"), g.exec("foo").index);
