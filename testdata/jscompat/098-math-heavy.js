var vals = [3, 1, 4, 1, 5, 9, 2, 6];
var max = -Infinity, min = Infinity, sum = 0;
for (var v of vals) { if (v > max) max = v; if (v < min) min = v; sum += v; }
Log(max + " " + min + " " + sum / vals.length);
Log(Math.max(max, 100));
Log(Math.round(sum / vals.length * 100) / 100);
