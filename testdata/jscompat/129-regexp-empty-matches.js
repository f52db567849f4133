// Empty matches advance by one character and are replaced between characters.
Log("abc".replace(/(?:)/g, "-"));
Log("abc".replace(/x*/g, "-"));
Log("aaa".replace(/a*/g, "X"), "baaac".replace(/a*/g, "X"));
Log(JSON.stringify("abc".match(/x*/g)));
Log(JSON.stringify("aXbX".split(/X*/)));
var re = /a*/g, r, idx = [];
while ((r = re.exec("baab")) !== null) {
  idx.push(r.index + ":" + r[0]);
  if (r[0] === "") re.lastIndex++;
}
Log(idx.join(" "));
Log("abc".replace(/$/, "!"), "abc".replace(/^/g, ">"));
