Log("tab:\there");
Log("\x41\u0042\u{43}");
Log('single "double" inside');
Log("back\\slash");
Log("caf\u00e9" === "café");
