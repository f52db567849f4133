function setIt() { leaked = "global"; }
setIt();
Log(leaked);
var top = 1;
function readTop() { return top + 1; }
Log(readTop());
