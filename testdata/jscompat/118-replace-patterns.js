// Replacement strings: $1..$99, $&, $`, $', $$, and what stays text.
Log("John Smith".replace(/(\w+)\s(\w+)/, "$2, $1"));
Log("abc".replace(/b/, "[$&]"), "abc".replace(/b/, "[$`]"), "abc".replace(/b/, "[$']"));
Log("abc".replace(/b/, "$$"), "abc".replace(/b/, "$0"), "abc".replace(/b/, "$1"), "abc".replace(/(b)/, "$2"));
Log("abc".replace(/(b)/, "$01"), "abc".replace(/(b)/, "$10"), "abc".replace(/(b)/, "$"), "abc".replace(/(b)/, "$x"));
var many = /(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)/;
Log("abcdefghijk".replace(many, "$11-$10-$1"));
Log("aaa".replace(/a/g, "$&$&"), "x-y-z".replace(/-/g, "$$"));
Log("abc".replace(/(x)?b/, "[$1]"));
Log("abc".replace(/b/, "$<n>"));
