// The m flag makes ^ and $ match at lines; the s flag lets . match line breaks.
var text = "first line\nsecond line\nthird";
Log(JSON.stringify(text.match(/^\w+/gm)), JSON.stringify(text.match(/^\w+/g)));
Log(JSON.stringify(text.match(/\w+$/gm)), JSON.stringify(text.match(/\w+$/g)));
Log(/first.*third/.test(text), /first.*third/s.test(text));
Log(text.replace(/^/gm, "> "));
Log(JSON.stringify("a\r\nb".split(/\r?\n/)));
Log(/^b$/m.test("a\r\nb"), /a$/m.test("a\r\nb"));
