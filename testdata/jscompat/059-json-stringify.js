Log(JSON.stringify({a: 1, b: "s", c: [1, "2", null], d: true, e: null}));
Log(JSON.stringify([undefined, function () {}, NaN]));
Log(JSON.stringify({u: undefined, f: function () {}}));
Log(JSON.stringify("quote\"d\n"));
Log(JSON.stringify({z: 1, y: {x: []}}, null, 2));
Log(JSON.stringify(1.5));
Log(JSON.stringify({}));
Log(JSON.stringify([]));
Log(JSON.stringify(undefined));
