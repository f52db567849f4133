// AfterFileUpload: copy each upload to a second storage, the site's vfs named "backup" (the
// v7 blog's "most coveted" task), keeping its path. A failed copy is logged and does not
// refuse the upload.
{
  var backup = new VirtualFS("backup");
  var path = CtxRelPath();
  var folder = path.substring(0, path.lastIndexOf("/"));
  if (folder !== "") {
    backup.MkdirAll(folder);
  }
  var r = GetCurrentVFS().CopyToVFS(path, backup, path);
  if (r.Ok()) {
    Log("backed up " + path + " (" + backup.Stat(path).Info().Size + " bytes)");
  } else {
    Log.Error("backup of " + path + " failed: " + r.ErrorMsg());
  }
}
