var sq = x => x * x;
var add = (a, b) => a + b;
var obj = () => ({k: "v"});
var block = (x) => { var y = x + 1; return y * 2; };
Log(sq(4) + " " + add(1, 2) + " " + obj().k + " " + block(2));
Log([1, 2, 3].map(x => x + 1).filter(x => x > 2).join(","));
var noArgs = () => "none";
Log(noArgs());
