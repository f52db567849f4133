// A RegExp converted to a string in the usual places.
var re = /a+b/gi;
Log("" + re, `${re}`, [re, /c/].join(" "), String(/x\/y/));
Log(re + "!", JSON.stringify([re]), typeof String(re));
var o = {pattern: re};
Log(o.pattern.source, o.pattern.flags);
Log(re == "/a+b/gi", re === re, /a/ == /a/);
