var i = 0;
loop: while (true) {
  i++;
  switch (i) {
    case 3: break loop;
    default: Log("i" + i);
  }
}
Log("done " + i);
