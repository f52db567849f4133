try {
  var o;
  o.prop = 1;
} catch (e) {
  Log("caught " + e.name);
}
