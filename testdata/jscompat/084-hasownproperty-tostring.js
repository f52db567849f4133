var o = {a: 1};
Log(o.hasOwnProperty("a") + " " + o.hasOwnProperty("b"));
Log(o.toString());
Log([1, 2].toString());
Log((5).toString() + true.toString());
