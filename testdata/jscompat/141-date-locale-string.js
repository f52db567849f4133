// Date.prototype.toLocaleString and its date and time parts, in en-US.
var times = [0, 43200000, 1714568709000, 1714521600000, 1735689599999, 1000000000000, 1714611599000];
for (var i = 0; i < times.length; i++) {
  var d = new Date(times[i]);
  Log(d.toLocaleString(), "|", d.toLocaleDateString(), "|", d.toLocaleTimeString());
}
Log(new Date(1714568709000).toLocaleString("en-US"));
