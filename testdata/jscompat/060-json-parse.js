var o = JSON.parse('{"name":"x","n":[1,2,{"k":null}],"t":true,"2":"two"}');
Log(o.name + " " + o.n.length + " " + o.n[2].k + " " + o.t);
Log(Object.keys(o).join(","));
Log(JSON.stringify(o));
try { JSON.parse("{bad"); } catch (e) { Log(e.name); }
Log(JSON.parse("3.5") + 1);
Log(JSON.parse('"s"'));
