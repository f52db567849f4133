// Host class instances in arrays, objects and functions.
function greetAll(names) {
  return names.map(function (n) { return new Greeter(n); });
}
var gs = greetAll(["x", "y", "z"]);
gs[1].Punct = ".";
Log(gs.map(function (g) { return g.Greet(); }).join(" "));
var reg = {main: new Greeter("main")};
reg.main.Name("primary");
Log(reg.main.Greet(), reg.main.Count);
var total = 0;
for (const g of gs) { g.Greet(); total += g.Count; }
Log(total);
Log(new Greeter("p" + 1 + 2).Greet());
