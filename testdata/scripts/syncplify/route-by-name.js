// AfterFileUpload: file each upload where a partner's naming convention says, read with named
// groups: INV_2024-05_ACME.pdf goes to /invoices/acme/2024/05/, ORD_… to /orders/…, CN_… to
// /credit-notes/…. Other names stay where they were uploaded, with a warning in the log.
// Follows Syncplify v7's CtxRelPath page (the event's file, Exit() early when it does not
// apply, then GetCurrentVFS(): MkdirAll and Rename).
{
  var folders = { INV: "/invoices", ORD: "/orders", CN: "/credit-notes" };
  var path = CtxRelPath();
  var name = path.substring(path.lastIndexOf("/") + 1);
  var m = name.match(/^(?<kind>INV|ORD|CN)_(?<year>\d{4})-(?<month>0[1-9]|1[0-2])_(?<party>[a-z0-9]+)\.(pdf|xml)$/i);
  if (m === null) {
    Log.Warn("not routed, the name does not follow the convention: " + path);
    Exit();
  }
  var folder = folders[m.groups.kind.toUpperCase()] + "/" + m.groups.party.toLowerCase() + "/" +
    m.groups.year + "/" + m.groups.month;
  var vfs = GetCurrentVFS();
  var r = vfs.MkdirAll(folder);
  if (r.Ok()) {
    r = vfs.Rename(path, folder + "/" + name);
  }
  if (r.Ok()) {
    Log("routed " + path + " to " + folder);
  } else {
    Log.Error("cannot route " + path + ": " + r.ErrorMsg());
  }
}
