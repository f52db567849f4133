// AfterFileUpload: move each upload into a folder of the day (/archive/2024-05-01/name),
// creating the folder when needed. Follows Syncplify v7's CtxRelPath page (take the event's
// file with CtxRelPath(), then work on it through GetCurrentVFS()) with the VFS page's MkdirAll
// and Rename. The move counts against the user's quota exactly as the
// client's own rename would (it changes nothing there).
{
  var vfs = GetCurrentVFS();
  var path = CtxRelPath();
  var d = new Date();
  var day = d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  var folder = "/archive/" + day;
  if (path.indexOf("/archive/") !== 0) {
    var r = vfs.MkdirAll(folder);
    if (r.Ok()) {
      r = vfs.Rename(path, folder + path.substring(path.lastIndexOf("/")));
    }
    if (!r.Ok()) {
      Log.Error("could not archive " + path + ": " + r.ErrorMsg());
    }
  }
}
