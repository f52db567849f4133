// Back references by number and name, also case-insensitive.
Log(/(\w)\1/.test("hello"), /(\w)\1/.test("helo"));
Log("aa bb cd ee".match(/(\w)\1/g).join(","));
Log(/(?<c>[a-z])\k<c>/i.exec("xAay")[0]);
Log(/(a)\1/i.test("aA"), /(a)\1/.test("aA"));
Log("<b>bold</b> <i>it</i>".replace(/<(\w+)>(.*?)<\/\1>/g, "[$1:$2]"));
Log(/\1(a)/.exec("a")[0], /(a)|\1b/.exec("b")[0]);
