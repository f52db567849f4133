// AfterFileUpload: Syncplify v6's knowledge-base script "Preventing upload of EXE files",
// with its Pascal-style syntax corrected: delete an upload that starts with "MZ" and has
// "PE\0\0" at offset 256 (the offset the article assumes). The upload is published first,
// then deleted: the client's upload succeeds, and the file is gone.
{
  var p = Session.GetAbsPath();
  if (FileReadAsHex(p, 0, 2) == '4D5A' && FileReadAsHex(p, 256, 4) == '50450000') {
    if (DelFile(p)) {
      Log('Deleted EXE file: ' + Session.GetRelPath());
    }
  }
}
