var o = {a: {b: 1}};
Log(o?.a?.b);
Log(o.x?.y);
var n = null;
Log(n?.z);
Log(o?.["a"]?.b);
