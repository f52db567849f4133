function fact(n) { return n <= 1 ? 1 : n * fact(n - 1); }
Log(fact(10));
function fib(n) { if (n < 2) return n; return fib(n - 1) + fib(n - 2); }
Log(fib(15));
var even = function (n) { return n === 0 ? true : odd(n - 1); };
function odd(n) { return n === 0 ? false : even(n - 1); }
Log(even(10) + " " + odd(7));
