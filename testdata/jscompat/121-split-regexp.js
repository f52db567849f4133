// split with a RegExp: captures are kept, limit applies, empty matches split characters.
Log(JSON.stringify("a1b2c3".split(/\d/)));
Log(JSON.stringify("a1b2c3".split(/(\d)/)));
Log(JSON.stringify("a, b ,c,d".split(/\s*,\s*/)));
Log(JSON.stringify("a1b2c3".split(/\d/, 2)), JSON.stringify("a1b2c3".split(/(\d)/, 2)));
Log(JSON.stringify("abc".split(/(?:)/)), JSON.stringify("".split(/x/)), JSON.stringify("".split(/(?:)/)));
Log(JSON.stringify("ab".split(/$/)), JSON.stringify("ab".split(/^/)));
Log(JSON.stringify("one  two\tthree\nfour".split(/\s+/)));
Log(JSON.stringify("a-b_c".split(/(-)|(_)/)));
Log(JSON.stringify("x".split(/x/)), JSON.stringify("xax".split(/x/)));
Log(JSON.stringify("a,b,c".split(/,/, 0)), JSON.stringify("a,b,c".split(/,/, -1)));
