// Escapes in patterns: hex, unicode, control and the usual ones.
Log(/\x41\u0042/.test("AB"), /\t/.test("a\tb"), /\n/.test("a\nb"), /\cJ/.test("\n"));
Log(/\//.test("a/b"), /\./.test("a"), /a\-b/.test("a-b"), /\$\^/.test("$^"));
Log(new RegExp("\\d\\s\\w").test("1 a"), new RegExp("\t").test("\t"));
Log(/[\t ]+/.exec("a \t b")[0].length, /\0/.test("\0"));
Log(/\u{41}/u.test("A"), /\u{41}/.test("A"));
