// BeforeFileUpload and BeforeFileRename: refuse names that must not land on the server, by
// case-insensitive regular expressions: executables and scripts (also with the trailing dots
// and spaces Windows drops), Office lock files and partial downloads. A rename is judged by its
// target: that is how setup.txt becomes setup.EXE. Follows Syncplify v7's BlockOperation page
// (refuse .pdf uploads in BeforeFileUpload with ExtractExt and BlockOperation), with a
// case-insensitive regular expression in place of the one extension.
{
  var path = EventHandler() == "BeforeFileRename" ? CtxRelTargetPath() : CtxRelPath();
  var name = path.split("/").pop();
  var rules = [
    { re: /\.(exe|com|bat|cmd|scr|pif|msi|ps1|vbs|jse?|wsf|hta)[. ]*$/i, what: "an executable" },
    { re: /^~\$|\.(tmp|part|crdownload)$/i, what: "a temporary file" }
  ];
  for (var i = 0; i < rules.length; i++) {
    if (rules[i].re.test(name)) {
      Log.Warn("refused " + rules[i].what + ": " + path + " from " + Session.GetRemoteAddress());
      Session.BlockOperation();
      break;
    }
  }
}
