var items = Session.GetAllCustomData();
for (var i = 0; i < items.length; i++) {
  Log("item " + i + ": " + items[i]);
}
items.forEach(function (it, idx) { Log(idx + "=" + it); });
for (var it of items) Log(it.toUpperCase());
