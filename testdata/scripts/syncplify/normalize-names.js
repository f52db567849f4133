// AfterFileUpload: give each upload a tidy name with regular expression replacements: lower
// case, German umlauts spelled out, runs of spaces and underscores made one dash, any other
// character dropped, so "Q3 Report (FINAL).PDF" becomes "q3-report-final.pdf". When the tidy
// name is taken, a number is added ("q3-report-final-2.pdf") rather than replacing the older
// file. Follows Syncplify v7's CtxRelPath page (the event's file, then GetCurrentVFS().Stat and
// Rename); no Syncplify example uses regular expressions (theirs use ExtractExt), these have
// JavaScript's semantics.
{
  var vfs = GetCurrentVFS();
  var path = CtxRelPath();
  var slash = path.lastIndexOf("/");
  var dir = path.substring(0, slash + 1);
  var name = path.substring(slash + 1);
  var dot = name.lastIndexOf(".");
  var base = dot > 0 ? name.substring(0, dot) : name;
  var ext = dot > 0 ? name.substring(dot).toLowerCase().replace(/[^a-z0-9.]/g, "") : "";
  var umlauts = { "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "ae", "Ö": "oe", "Ü": "ue", "ß": "ss" };
  var tidy = base
    .replace(/[äöüÄÖÜß]/g, function (c) { return umlauts[c]; })
    .toLowerCase()
    .replace(/[\s_]+/g, "-")
    .replace(/[^a-z0-9.-]+/g, "")
    .replace(/-{2,}/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "");
  if (tidy === "") {
    tidy = "file";
  }
  var target = dir + tidy + ext;
  for (var n = 2; target !== path && vfs.Stat(target).Ok(); n++) {
    target = dir + tidy + "-" + n + ext;
  }
  if (target !== path) {
    var r = vfs.Rename(path, target);
    if (r.Ok()) {
      Log("renamed " + path + " to " + target);
    } else {
      Log.Error("cannot rename " + path + ": " + r.ErrorMsg());
    }
  }
}
