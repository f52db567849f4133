// Validating input as hooks do: user names, addresses, IPs, sizes.
var users = ["alice", "bob_2", "x", "Bad Name", "ok-user", "toolongusername_abcdefghij"];
var userRe = /^[a-z][a-z0-9_-]{2,15}$/;
Log(users.map(function (u) { return u + "=" + userRe.test(u); }).join(" "));
var ipRe = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
Log(["10.0.0.1", "256.1.1.1", "1.2.3", "192.168.001.1", "0.0.0.0"].map(function (ip) { return ipRe.test(ip); }).join(","));
var sizeRe = /^(\d+(?:\.\d+)?)\s*(k|m|g)?b?$/i;
["10", "1.5 GB", "20kb", "3 mb", "x"].forEach(function (s) {
  var m = sizeRe.exec(s);
  if (!m) { Log(s, "invalid"); return; }
  var mult = {k: 1024, m: 1048576, g: 1073741824}[(m[2] || "").toLowerCase()] || 1;
  Log(s, Number(m[1]) * mult);
});
