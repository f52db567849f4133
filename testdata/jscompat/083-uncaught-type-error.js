Log("start");
var x = null;
x.foo();
