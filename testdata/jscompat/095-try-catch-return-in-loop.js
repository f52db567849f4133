function find(list, x) {
  for (var i = 0; i < list.length; i++) {
    try {
      if (list[i] === x) return i;
    } catch (e) {}
  }
  return -1;
}
Log(find([5, 6, 7], 7) + " " + find([1], 2));
