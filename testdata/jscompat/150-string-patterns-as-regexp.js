// match and search read a string as a pattern; replace and split read it as text.
Log("a.c abc".match("a.c").index, "a.c abc".search("b"), "a+b".search("\\+"));
Log("a.c".replace(".", "!"), "abc".replace(".", "!"), "a.b.c".split(".").length);
Log("x(1)".replace("(1)", "[2]"), "1+1=2".split("+").join("|"));
Log(JSON.stringify("aaa".match("a")), "aaa".match("b"));
