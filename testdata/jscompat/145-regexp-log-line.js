// Parsing log lines with named groups.
var lines = [
  "2024-05-01T10:00:00Z INFO upload /in/a.csv 120",
  "2024-05-01T10:00:05Z WARN refused /in/setup.exe 0",
  "garbage",
  "2024-05-01T10:01:00Z INFO download /out/b.txt 3300",
];
var re = /^(?<time>\S+) (?<level>[A-Z]+) (?<op>\w+) (?<path>\S+) (?<bytes>\d+)$/;
var total = 0;
lines.forEach(function (l) {
  var m = re.exec(l);
  if (!m) { Log("skip", JSON.stringify(l)); return; }
  total += Number(m.groups.bytes);
  Log(m.groups.level, m.groups.op, m.groups.path.match(/[^\/]+$/)[0], m.groups.time.slice(11, 19));
});
Log("total", total);
