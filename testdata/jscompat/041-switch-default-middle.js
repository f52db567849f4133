function f(n) {
  var out = [];
  switch (n) {
    case 1: out.push("1");
    default: out.push("d");
    case 2: out.push("2"); break;
    case 3: out.push("3");
  }
  return out.join("");
}
Log(f(1) + " " + f(2) + " " + f(3) + " " + f(9));
