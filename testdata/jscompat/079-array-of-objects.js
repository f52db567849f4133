var users = [{name: "ann", age: 30}, {name: "bob", age: 25}];
users.push({name: "cid", age: 35});
var names = users.filter(u => u.age >= 30).map(u => u.name);
Log(names.join(","));
var total = 0;
for (var u of users) total += u.age;
Log(total / users.length);
Log(JSON.stringify(users[1]));
