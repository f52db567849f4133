var a = 1;
function f() { var a = 2; if (true) { var a = 3; } return a; }
Log(f());
Log(a);
for (var i = 0; i < 3; i++) {}
Log(i);
