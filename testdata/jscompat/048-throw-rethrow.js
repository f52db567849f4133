function check(x) { if (x < 0) throw new RangeError("negative: " + x); return x; }
try { check(1); check(-2); } catch (e) { Log(e.name + " " + e.message); Log(String(e)); }
try {
  try { throw new TypeError("t"); } catch (e) { throw e; }
} catch (e2) { Log("rethrown " + e2.name); }
var err = new Error("plain");
Log(err.message + " " + err.name);
