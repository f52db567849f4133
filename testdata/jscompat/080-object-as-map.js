var counts = {};
var words = "a b a c b a".split(" ");
for (var i = 0; i < words.length; i++) {
  var w = words[i];
  counts[w] = (counts[w] || 0) + 1;
}
Log(JSON.stringify(counts));
var keys = Object.keys(counts).sort();
Log(keys.join(""));
Log(Object.values(counts).join(","));
Log(JSON.stringify(Object.entries({x: 1})));
