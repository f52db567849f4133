var a = [10, 9, 1, 100, 25];
Log(a.slice().sort().join(","));
Log(a.slice().sort(function (x, y) { return x - y; }).join(","));
Log(["b", "a", "c"].sort().join(""));
Log([1, 2, 3].reverse().join(""));
Log([1].concat([2, 3], 4).join(","));
Log(Array.isArray([]) + " " + Array.isArray({}));
var people = [{n: "b", a: 1}, {n: "a", a: 1}, {n: "c", a: 0}];
Log(people.sort(function (x, y) { return x.a - y.a; }).map(p => p.n).join(""));
