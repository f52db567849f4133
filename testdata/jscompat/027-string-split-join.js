Log("a,b,,c".split(",").length);
Log("a,b,,c".split(",").join("|"));
Log("abc".split("").join("-"));
Log("a b c".split(" ", 2).join("+"));
Log("abc".split().length);
Log("".split(",").length);
Log("/in/sub/file.txt".split("/").join("|"));
