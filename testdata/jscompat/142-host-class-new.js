// new of a host class, fluent chains and settable fields.
var g = new Greeter("bob");
Log(g.Greet());
Log(new Greeter("ann").Name("al").Greet());
g.Punct = "?";
Log(g.Greet(), g.Punct, g.Count);
var h = new Greeter("zed");
Log(h.Greet(), h.Count, g.Count);
Log(typeof Greeter, typeof g);
var chain = new Greeter("a").Name("b").Name("c");
Log(chain.Greet(), chain.Count);
