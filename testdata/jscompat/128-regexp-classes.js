// Character classes: \d \w \s \b \B, ranges, negation, escapes inside.
Log("a1 b2_c3".match(/\d/g).join(""), "a1 b2_c3".match(/\w+/g).join("|"), "a1 b2".match(/\s/g).length);
Log("a1 b2".match(/\D/g).length, "a b".match(/\W/g).length, "a b\tc".match(/\S+/g).join("|"));
Log("word another".match(/\bw\w*/g).join(","), "ab cd".replace(/\B/g, "-"));
Log("x-y_z.q".match(/[-_.]/g).join(""), "ABCxyz".match(/[^A-Z]+/)[0]);
Log("a]b\\c".match(/[\]\\]/g).join(""), "aXb".match(/[\x41-\x5A]/)[0]);
Log(/[^]/.test("\n"), /[]/.test("a"), /./.test("\n"), /[.]/.test("a"));
Log("3.14 and 2.71".match(/\d+\.\d+/g).join(";"));
