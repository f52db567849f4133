;;
{}
{ ; }
if (true) {} else {}
for (var i = 0; i < 2; i++);
Log(i);
