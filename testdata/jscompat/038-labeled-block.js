blk: {
  Log("before");
  if (true) break blk;
  Log("never");
}
Log("after");
var x = 0;
lbl: if (x === 0) { x = 1; break lbl; }
Log(x);
