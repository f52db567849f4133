function f(n) {
  var out = [];
  switch (n) {
    case 0: out.push("zero");
    case 1: out.push("one");
    case 2: out.push("two"); break;
    case 3: out.push("three");
  }
  return out.join(",");
}
Log(f(0)); Log(f(1)); Log(f(2)); Log(f(3)); Log(f(4));
