var x = 5;
Log(x > 3 ? "big" : "small");
Log(x > 10 ? "big" : x > 4 ? "medium" : "small");
var y = x ? 0 : 1;
Log(y);
Log((null ? 1 : "") + "|");
