// File name filters as event scripts write them.
var uploads = ["/in/report.PDF", "/in/setup.exe", "/in/Photo.JPG", "/in/run.BAT", "/in/notes.txt",
  "/in/archive.tar.gz", "/in/.hidden", "/in/invoice_2024-05-01.csv", "/in/~$lock.docx"];
var denied = /\.(exe|bat|cmd|ps1|scr)$/i;
var images = /\.(jpe?g|png|gif)$/i;
var dated = /_(\d{4})-(\d{2})-(\d{2})\.csv$/;
for (var i = 0; i < uploads.length; i++) {
  var p = uploads[i];
  var name = p.replace(/^.*\//, "");
  var what = denied.test(name) ? "deny" : images.test(name) ? "image" : "other";
  var d = p.match(dated);
  Log(name, what, d ? d[1] + d[2] + d[3] : "-", /^(~\$|\.)/.test(name));
}
var kept = uploads.filter(function (p) { return !denied.test(p); });
Log(kept.length, kept.map(function (p) { return p.split(/[\/.]/).pop(); }).join(","));
