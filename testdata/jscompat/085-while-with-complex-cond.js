var a = [3, 2, 1, 0, 5];
var i = 0;
while (i < a.length && a[i]) { Log(a[i]); i++; }
var j = 0;
while (j++ < 3) Log("j" + j);
