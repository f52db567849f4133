var a = 1;
var a;
Log(a);
var b = b;
Log(b);
if (false) { var c = 3; }
Log(c);
