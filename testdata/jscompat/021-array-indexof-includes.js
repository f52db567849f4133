var a = ["x", "y", "z", "y"];
Log(a.indexOf("y"));
Log(a.lastIndexOf("y"));
Log(a.indexOf("q"));
Log(a.indexOf("y", 2));
Log(a.includes("z"));
Log([NaN].includes(NaN));
Log([NaN].indexOf(NaN));
Log([1, 2, 3].indexOf("2"));
