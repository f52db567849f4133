var path = Session.GetRelPath();
var ext = ExtractExt(path).toLowerCase();
var blocked = [".exe", ".bat", ".cmd"];
if (blocked.indexOf(ext) >= 0) {
  Log("blocking " + path);
  Session.BlockOperation();
} else {
  Log("allowing " + path + " (" + ext + ")");
}
