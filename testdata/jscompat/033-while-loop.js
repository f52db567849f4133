var i = 0;
while (i < 3) { Log(i); i++; }
var n = 10;
while (n) n = n - 3 > 0 ? n - 3 : 0;
Log(n);
