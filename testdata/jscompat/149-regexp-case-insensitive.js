// Case-insensitive matching of classes, ranges and literals.
Log(/[a-z]+/i.exec("HeLLo123")[0], /[A-Z]/i.test("q"), /^[^a-z]+$/i.test("ABC"));
Log("FooBARbaz".replace(/bar/i, "_"), "FooBARbaz".replace(/bar/gi, "_"));
Log(/\w+@\w+\.COM/i.test("me@host.com"), /ß/i.test("ss"));
var exts = ["a.Jpg", "b.JPEG", "c.png", "d.PnG", "e.gif"];
Log(exts.filter(function (e) { return /\.(jpe?g|png)$/i.test(e); }).join(","));
