// String.prototype.search: the index of the first match, or -1.
Log("hello world".search(/o/), "hello world".search(/O/), "hello world".search(/O/i));
Log("hello world".search(/xyz/), "abc".search(/$/), "abc".search(/^/));
Log("a.b".search("."), "a.b".search("\\."));
var g = /l/g;
g.lastIndex = 5;
Log("hello".search(g), g.lastIndex);
Log("report-2024.pdf".search(/\d{4}/));
