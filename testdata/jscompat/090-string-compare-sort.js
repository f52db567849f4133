var files = ["b.txt", "A.txt", "a.txt", "10.log", "9.log"];
Log(files.sort().join(" "));
Log("B" < "a");
Log(["b", "a"].sort(function (x, y) { return x < y ? -1 : x > y ? 1 : 0; }).join(""));
