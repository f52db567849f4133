// replaceAll takes a global RegExp only; replace with g replaces every match.
Log("a.b.c".replaceAll(/\./g, "/"), "a.b.c".replace(/\./g, "/"), "a.b.c".replace(/\./, "/"));
Log("aAaA".replaceAll(/a/gi, "x"));
try {
  "abc".replaceAll(/b/, "x");
  Log("no error");
} catch (e) {
  Log(e.name);
}
Log("C:\\dir\\sub\\file.txt".replace(/\\/g, "/"));
Log("  many   spaces  here ".replace(/\s+/g, " ").trim());
Log("tab\tand\nnewline".replace(/[\t\n]/g, "_"));
