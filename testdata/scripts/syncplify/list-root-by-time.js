// Any event with a session: list the user's root folder, newest first (Syncplify v7's
// GetCurrentVFS example, sorted with the constants page's SortByTime and SortDesc).
{
  var vfs = GetCurrentVFS();
  if (vfs != null) {
    var dir = vfs.ReadDir("/", SortByTime, SortDesc);
    if (dir.Ok()) {
      var names = dir.Infos().map(function (i) { return i.Name + (i.IsDir ? "/" : "") + " " + i.Size; });
      Log("root of " + Session.GetUserID() + ": " + names.join(", "));
    } else {
      Log.Error("cannot list the root: " + dir.ErrorMsg());
    }
  }
}
