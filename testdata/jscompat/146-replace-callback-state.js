// Replacement functions with closures: numbering and mapping.
var n = 0;
Log("- a\n- b\n- c".replace(/^- /gm, function () { n++; return n + ". "; }));
var map = {cat: "dog", red: "blue"};
Log("the red cat and the cat".replace(/\b(\w+)\b/g, function (w) { return map[w] || w; }));
Log("camelCaseName".replace(/[A-Z]/g, function (c, off) { return (off > 0 ? "_" : "") + c.toLowerCase(); }));
Log("snake_case_name".replace(/_(\w)/g, function (m, c) { return c.toUpperCase(); }));
Log("%7E%20x".replace(/%([0-9A-F]{2})/g, function (m, h) { return String.fromCharCode(parseInt(h, 16)); }));
