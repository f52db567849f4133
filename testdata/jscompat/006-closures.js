function counter() { var n = 0; return function () { n++; return n; }; }
var c1 = counter(), c2 = counter();
c1(); c1();
Log(c1());
Log(c2());
var add = function (a) { return function (b) { return a + b; }; };
Log(add(2)(3));
