// Greedy and lazy quantifiers, counted repetition and alternation order.
Log("<a><b>".match(/<.*>/)[0], "<a><b>".match(/<.*?>/)[0]);
Log("aaaa".match(/a{2}/g).join("|"), "aaaaa".match(/a{2,3}/g).join("|"), "aaaaa".match(/a{2,}?/g).join("|"));
Log("abc".match(/a|ab|abc/)[0], "abc".match(/abc|ab|a/)[0]);
Log("xyyyz".replace(/y+?/, "_"), "xyyyz".replace(/y*/, "_"), "xyyyz".replace(/y??/, "_"));
Log(/^(ab)+$/.test("ababab"), /^(ab)+$/.test("ababa"));
Log(JSON.stringify(/(z)((a+)?(b+)?(c))*/.exec("zaacbbbcac")));
Log("a{1".match(/a{1/)[0], /x{/.test("x{"));
