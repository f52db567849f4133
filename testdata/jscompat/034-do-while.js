var i = 0;
do { Log("body " + i); i++; } while (i < 2);
var j = 5;
do { j++; } while (false);
Log(j);
var k = 0;
do { k++; if (k == 2) continue; Log("k" + k); } while (k < 4);
