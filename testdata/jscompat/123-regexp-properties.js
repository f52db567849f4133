// source, flags and the flag properties; toString.
var re = /a\/b[/]c/gi;
Log(re.source, re.flags, re.global, re.ignoreCase, re.multiline, re.sticky, re.dotAll, re.unicode);
Log(String(re), re.toString(), "" + re);
Log(new RegExp("a/b").source, new RegExp("a/b").toString());
Log(/x/yusmig.flags);
Log(new RegExp("line\nbreak").source);
Log(typeof /x/, typeof RegExp, /x/.lastIndex);
var r = /x/g;
r.lastIndex = 3;
Log(r.lastIndex);
r.source = "changed";
Log(r.source);
Log(JSON.stringify({re: /x/, n: 1}));
var k = /k/g;
k[0] = "zero";
k[1] = "one";
k.extra = 5;
Log(k[0], k[1], k[2], k.extra, k.test("k"), k.lastIndex, k["lastIndex"]);
