var o = {};
o.z = 1; o.a = 2; o[5] = "five"; o["1"] = "one"; o.m = 3;
Log(Object.keys(o).join(","));
Log(JSON.stringify(o));
delete o.z;
o.z = "again";
Log(Object.keys(o).join(","));
