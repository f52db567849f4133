// Object.assign copies own enumerable properties in order and returns the target.
var target = {a: 1, b: 2};
var r = Object.assign(target, {b: 3, c: 4}, {d: 5});
Log(JSON.stringify(r), r === target);
Log(JSON.stringify(Object.assign({}, {x: 1}, null, undefined, {y: 2})));
var defaults = {timeout: 5, retries: 3, verbose: false};
var opts = Object.assign({}, defaults, {retries: 5});
Log(JSON.stringify(opts), JSON.stringify(defaults));
Log(JSON.stringify(Object.assign({}, "ab")), JSON.stringify(Object.assign({}, [7, 8])));
var o = Object.assign({}, {2: "two", z: "z", 1: "one"});
Log(Object.keys(o).join(","));
try {
  Object.assign(null, {a: 1});
} catch (e) {
  Log(e.name);
}
var nested = {inner: {v: 1}};
var copy = Object.assign({}, nested);
copy.inner.v = 2;
Log(nested.inner.v);
