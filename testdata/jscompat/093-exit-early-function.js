function check(p) {
  if (!p) return "empty";
  if (p.indexOf("..") >= 0) return "traversal";
  return "ok";
}
Log(check("") + " " + check("/a/../b") + " " + check("/a/b"));
