// What test, exec and the string methods do with values that are not strings.
Log(/undefined/.test(), /null/.test(null), /123/.test(123), /true/.test(true));
Log(/1,2/.test([1, 2]), /object/.test({}));
var n = 12345;
Log(String(n).replace(/3/, "x"), String(n).match(/\d/g).length);
Log("a1".match(undefined) !== null, JSON.stringify("abc".match()));
Log("x".search(), "abc".split(undefined).length);
