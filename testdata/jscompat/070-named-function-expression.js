var f = function fact(n) { return n <= 1 ? 1 : n * fact(n - 1); };
Log(f(5));
var g = function () { return "anon"; };
Log(g());
Log((function (x) { return x + 1; })(1));
