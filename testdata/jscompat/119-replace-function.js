// A replacement function gets the match, the groups, the offset and the string.
var out = "a1b22c333".replace(/(\d)(\d*)/g, function (m, first, rest, off, str) {
  return "<" + m + "|" + first + "|" + rest + "|" + off + "|" + str.length + ">";
});
Log(out);
Log("price: 10 USD, 25 USD".replace(/(\d+) USD/g, function (m, n) { return (n * 2) + " EUR"; }));
Log("abc".replace(/(x)?(b)/, function (m, x, b) { return typeof x + ":" + b; }));
Log("hello world".replace(/\b\w/g, function (c) { return c.toUpperCase(); }));
Log("a-b".replace(/-/, function () { return 42; }), "a-b".replace(/-/, function () {}));
var n = 0;
Log("xxx".replace(/x/g, function () { n++; return n; }), n);
Log("2024-05-01".replace(/(?<y>\d+)-(?<m>\d+)/, function (m, y, mo, off, s, groups) {
  return groups.m + "/" + groups.y + "@" + off;
}));
