// A global expression's exec and test move lastIndex; a failure resets it.
var re = /o/g;
var r;
while ((r = re.exec("foo boo")) !== null) {
  Log("found", r[0], "at", r.index, "next", re.lastIndex);
}
Log("after", re.lastIndex);
var t = /a/g;
Log(t.test("aXa"), t.lastIndex, t.test("aXa"), t.lastIndex, t.test("aXa"), t.lastIndex);
t.lastIndex = 2;
Log(t.test("aXa"), t.lastIndex);
t.lastIndex = 10;
Log(t.test("aXa"), t.lastIndex);
var words = /\w+/g, count = 0;
while (words.exec("one two three four")) count++;
Log(count);
