try {
  throw "oops";
} catch (e) {
  Log("caught " + e);
}
try { throw 42; } catch (e) { Log(typeof e + " " + e); }
try { throw {code: 7}; } catch (e) { Log(e.code); }
try { Log("no error"); } catch (e) { Log("never"); }
try { throw null; } catch (e) { Log(e); }
