var n = 3.14159;
Log(n.toFixed(0) + " " + n.toFixed(3));
Log((1.005).toFixed(2));
Log((0.5).toFixed(0) + " " + (1.5).toFixed(0) + " " + (2.5).toFixed(0));
Log((-1.5).toFixed(0));
Log((1e21).toFixed(2));
Log(Number.isInteger(5) + " " + Number.isInteger(5.5));
Log(Number.MAX_SAFE_INTEGER);
Log((8).toString(2));
