try {
  [1, 2, 3].forEach(function (x) {
    if (x == 2) throw new Error("stop at " + x);
    Log("saw " + x);
  });
} catch (e) {
  Log(e.message);
}
var r = [3, 1, 2].map(function (x) {
  try { if (x == 1) throw "one"; return x * 10; } catch (e) { return e; }
});
Log(r.join(","));
