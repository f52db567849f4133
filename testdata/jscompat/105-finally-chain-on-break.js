var out = [];
outer: for (var i = 0; i < 3; i++) {
  try {
    try {
      if (i == 1) break outer;
      out.push("body" + i);
    } finally {
      out.push("inner" + i);
    }
  } finally {
    out.push("outer" + i);
  }
}
Log(out.join(","));
function f() {
  for (var j = 0; j < 3; j++) {
    try {
      if (j == 1) return "returned at " + j;
    } finally {
      Log("finally " + j);
    }
  }
  return "end";
}
Log(f());
