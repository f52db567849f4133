// Array.from: arrays, strings, array-likes, with a map function.
Log(JSON.stringify(Array.from([1, 2, 3])), JSON.stringify(Array.from("abc")));
Log(JSON.stringify(Array.from({length: 3})), JSON.stringify(Array.from({length: 2, 0: "a", 1: "b"})));
Log(JSON.stringify(Array.from({length: 4}, function (v, i) { return i * i; })));
Log(JSON.stringify(Array.from([1, 2], function (v) { return v * 10; })));
var src = [1, 2];
var copy = Array.from(src);
copy.push(3);
Log(src.length, copy.length, Array.isArray(copy));
Log(JSON.stringify(Array.from("")), Array.from({}).length, Array.from(5).length);
try {
  Array.from(null);
} catch (e) {
  Log(e.name);
}
Log(JSON.stringify(Array.of(1, "a", null)), Array.of().length);
Log(Array.from(Session.GetAllCustomData()).join("+"));
