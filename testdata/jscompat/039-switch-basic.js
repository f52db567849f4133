function name(n) {
  switch (n) {
    case 1: return "one";
    case 2: return "two";
    default: return "many";
  }
}
Log(name(1) + name(2) + name(7));
switch ("b") { case "a": Log("A"); break; case "b": Log("B"); break; }
switch (1) { case "1": Log("loose?"); break; default: Log("strict"); }
