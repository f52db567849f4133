function a() { try { return "try"; } finally { Log("fin a"); } }
function b() { try { return "try"; } finally { return "finally"; } }
function c() { try { throw 1; } catch (e) { return "catch"; } finally { Log("fin c"); } }
function d() { try { throw 1; } finally { return "swallowed"; } }
Log(a()); Log(b()); Log(c()); Log(d());
