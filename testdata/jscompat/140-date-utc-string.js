// Date.prototype.toUTCString.
var times = [0, 86400000 * 59, 951782400000, 1714568709000, 1735689599999, -86400000];
for (var i = 0; i < times.length; i++) {
  Log(new Date(times[i]).toUTCString());
}
var d = new Date(1714568709000);
Log("at " + d.toUTCString(), d.toUTCString().length);
