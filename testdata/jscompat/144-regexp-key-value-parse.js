// Parsing key=value pairs with matchAll into an object.
var line = "user=alice; ip=203.0.113.7; size=1024; note=\"a b\"";
var o = {};
for (const m of line.matchAll(/(\w+)=("[^"]*"|[^;]*)/g)) {
  o[m[1]] = m[2].replace(/^"|"$/g, "");
}
Log(JSON.stringify(o));
Log(Object.keys(o).length, o.size * 2, /^\d+\.\d+\.\d+\.\d+$/.test(o.ip));
