function f() {
  var log = [];
  try { log.push("try"); throw new Error("x"); }
  catch (e) { log.push("catch " + e.message); }
  finally { log.push("finally"); }
  return log.join(",");
}
Log(f());
try {
  try { throw new Error("inner"); } finally { Log("cleanup"); }
} catch (e) { Log("outer " + e.message); }
