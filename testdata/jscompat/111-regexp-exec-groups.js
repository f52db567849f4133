// exec returns the match with its groups, index and input, or null.
var re = /(\w+)@(\w+)\.(com|org)/;
var m = re.exec("mail alice@example.org today");
Log(m[0], m[1], m[2], m[3], m.length, m.index, m.input);
Log(JSON.stringify(m));
Log(re.exec("no address here"));
Log(re.exec("no address here") === null);
var opt = /(a)?(b)/.exec("b");
Log(opt.length, opt[0], opt[1], opt[2], typeof opt[1], JSON.stringify(opt));
var nested = /((a)(b(c)))/.exec("xabcx");
Log(JSON.stringify(nested), nested.index);
Log(re.lastIndex);
