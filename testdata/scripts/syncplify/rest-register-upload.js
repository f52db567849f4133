// AfterFileUpload: register each upload with a document-management REST API before it is
// published, and let the API decide. Follows Syncplify v7's GetSecret example (an API key from
// the secret store on a new HttpCli() chain) and the v6 HttpCli verbs page (POST of a JSON body,
// IsValid, BodyAsString), with BlockOperation. The script POSTs a JSON description of the file
// and reads the JSON answer:
//   201 {"accept": true, "id": "DOC-17", "folder": "/filed/acme"}  files the upload there;
//   201 {"accept": false, "reason": "…"}                          refuses it.
// With atomic uploads BlockOperation() here discards the upload: the client gets an error and
// nothing is stored. An API that cannot be reached, or answers anything else, refuses the
// upload too (fail closed).
{
  var api = GetSecret("dms_url");
  var vfs = GetCurrentVFS();
  var path = CtxRelPath();
  var st = vfs.Stat(path);
  var head = vfs.ReadFileAsHex(path, 8, 0, FromStart);
  var doc = {
    user: Session.GetUserID(),
    path: path,
    size: st.Ok() ? st.Info().Size : -1,
    magic: head.Ok() ? head.Data() : "",
    protocol: Session.GetProtocol()
  };
  var res = new HttpCli()
    .Url(api + "/v1/documents")
    .Header("Content-Type", "application/json")
    .Header("X-Api-Key", GetSecret("dms_api_key"))
    .ReqBody(JSON.stringify(doc))
    .Timeout(10)
    .Post();
  var answer = null;
  if (res.IsValid() && res.StatusCode() == 201) {
    try {
      answer = JSON.parse(res.BodyAsString());
    } catch (e) {
      Log.Error("document API: bad answer: " + e.message);
    }
  }
  if (answer === null) {
    Log.Error("document API unavailable (" + res.StatusCode() + " " + res.ErrorMsg() + "), refusing " + path);
    Session.BlockOperation();
  } else if (!answer.accept) {
    Log.Warn("document API refused " + path + ": " + answer.reason);
    Session.BlockOperation();
  } else {
    Session.AddCustomData("dms " + answer.id + " " + path);
    var where = path;
    if (answer.folder) {
      var r = vfs.MkdirAll(answer.folder);
      if (r.Ok()) {
        where = answer.folder + "/" + path.substring(path.lastIndexOf("/") + 1);
        r = vfs.Rename(path, where);
      }
      if (!r.Ok()) {
        Log.Error("cannot file " + path + " under " + answer.folder + ": " + r.ErrorMsg());
        where = path;
      }
    }
    Log("registered " + where + " as " + answer.id);
  }
}
