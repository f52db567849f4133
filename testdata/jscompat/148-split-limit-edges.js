// split with regular expressions at the edges of the string.
Log(JSON.stringify(",a,,b,".split(/,/)));
Log(JSON.stringify(",a,,b,".split(/,+/)));
Log(JSON.stringify("abc".split(/b/, 1)), JSON.stringify("abc".split(/(b)/, 1)));
Log(JSON.stringify("aXbXc".split(/x/i)), JSON.stringify("aXbXc".split(/x/)));
Log(JSON.stringify("path/to//file".split(/\/+/)));
Log(JSON.stringify("2024-05-01T10:20:30".split(/[-T:]/)));
Log("a b c".split(/ /).length, "a b c".split(/ /, 2).length);
