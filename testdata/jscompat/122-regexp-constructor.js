// new RegExp(pattern, flags), RegExp(...) without new, and copying an expression.
var ext = "pdf";
var re = new RegExp("\\." + ext + "$", "i");
Log(re.test("report.PDF"), re.test("report.pdf.txt"), re.source, re.flags);
var r2 = RegExp("a+", "g");
Log("caaandy aa".match(r2).join("|"));
var copy = new RegExp(re);
Log(copy.source, copy.flags, copy !== re, copy.test("x.pdf"));
var reflag = new RegExp(re, "g");
Log(reflag.flags, reflag.global);
Log(new RegExp("").source, new RegExp().test("anything"), String(new RegExp(undefined)));
Log(new RegExp("a|b").test("xb"), new RegExp("[0-9]+").exec("ab123c")[0]);
Log(new RegExp(5).test("450"), new RegExp("x", undefined).flags === "");
