var a = (1, 2, 3);
Log(a);
var i, j;
for (i = 0, j = 5; i < j; i++, j--) {}
Log(i + " " + j);
Log(void 0);
Log(typeof void "x");
