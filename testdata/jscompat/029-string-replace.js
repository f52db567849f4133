Log("a-b-c".replace("-", "+"));
Log("a-b-c".replaceAll("-", "+"));
Log("aaa".replace("a", "$&$&"));
Log("hello".replace("l", "[$`|$']"));
Log("x".replace("y", "z"));
Log("price: 5$".replace("5", "$$10"));
Log("a.b.c".split(".").join("/"));
