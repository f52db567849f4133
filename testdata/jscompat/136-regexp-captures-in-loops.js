// Captures inside repeated groups keep the last iteration; unmatched ones are undefined.
Log(JSON.stringify(/(\w)+/.exec("abc")));
Log(JSON.stringify(/(?:(a)|(b))+/.exec("ab")));
Log(JSON.stringify(/(a)|(b)/.exec("b")));
Log(JSON.stringify("ab".replace(/(x)?(a)/, "[$1|$2]")));
var m = /(\d+)(?:\.(\d+))?/.exec("v12");
Log(m[1], m[2], m[2] === undefined, m.length);
