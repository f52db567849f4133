var vals = [0, "", NaN, null, undefined, false, "0", " ", [], {}, -1, "false"];
for (var i = 0; i < vals.length; i++) {
  Log(i + ": " + (vals[i] ? "truthy" : "falsy"));
}
Log(!!0 + " " + !!"a" + " " + !NaN);
