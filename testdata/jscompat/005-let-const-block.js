let a = 1;
{ let a = 2; Log(a); }
Log(a);
const c = "c";
if (true) { const c = "inner"; Log(c); }
Log(c);
let u;
Log(u);
