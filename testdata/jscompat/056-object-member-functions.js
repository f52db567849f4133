var util = {
  double: function (x) { return x * 2; },
  greet: (n) => "hi " + n,
};
Log(util.double(21));
Log(util.greet("bob"));
util.triple = function (x) { return x * 3; };
Log(util.triple(3));
var fns = {list: [function () { return "in array"; }]};
Log(fns.list[0]());
