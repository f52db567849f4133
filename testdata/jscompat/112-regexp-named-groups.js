// Named groups: the groups object, $<name> in replacements, \k<name>.
var m = /(?<year>\d{4})-(?<month>\d\d)-(?<day>\d\d)/.exec("on 2024-05-01.");
Log(m.groups.year, m.groups.month, m.groups.day, m.index);
Log(JSON.stringify(m.groups), Object.keys(m.groups).join(","));
Log("2024-05-01".replace(/(?<y>\d+)-(?<m>\d+)-(?<d>\d+)/, "$<d>/$<m>/$<y>"));
Log("2024-05-01".replace(/(?<y>\d+)-(?<m>\d+)-(?<d>\d+)/, "$<nope>|$<d"));
var u = /(?<a>x)|(?<b>y)/.exec("y");
Log(u.groups.a, u.groups.b, JSON.stringify(u.groups));
Log(/(?<q>['"]).*?\k<q>/.exec(`say "hi" 'there'`)[0]);
Log(/(\d)/.exec("a1").groups);
