function greet(name, greeting = "Hello") { return greeting + ", " + name; }
Log(greet("bob"));
Log(greet("ann", "Hi"));
function sum(first, ...rest) { var s = first; rest.forEach(function (x) { s += x; }); return s + "/" + rest.length; }
Log(sum(1, 2, 3));
Log(sum(5));
