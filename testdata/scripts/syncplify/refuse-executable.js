// AfterFileUpload: refuse a Windows executable by its content, whatever its name: an "MZ"
// header whose e_lfanew (at offset 60) points at a "PE\0\0" signature. Follows the v6
// knowledge base's "Preventing upload of EXE files" (see delete-exe-v6.js), written with v7's
// VFS ReadFileAsHex/ReadFileAsBytes and the BlockOperation page. With atomic uploads
// the data is still under a temporary name here, and BlockOperation() discards it: the
// client's upload fails and nothing is published.
{
  var vfs = GetCurrentVFS();
  var path = CtxRelPath();
  var mz = vfs.ReadFileAsHex(path, 2, 0, FromStart);
  if (mz.Ok() && mz.Data() == "4D5A") {
    var lfanew = vfs.ReadFileAsBytes(path, 4, 60, FromStart);
    if (lfanew.Ok() && lfanew.Size() == 4) {
      var b = lfanew.Data();
      var pe = vfs.ReadFileAsHex(path, 4, b[0] + 256 * b[1] + 65536 * b[2], FromStart);
      if (pe.Ok() && pe.Data() == "50450000") {
        Log.Warn("Windows executable refused: " + path);
        Session.BlockOperation();
      }
    }
  }
}
