// AfterFileUpload, mode: async: mail each upload to the team with the file attached: the
// knowledge base's "How to email a list of uploaded files" with SendMail's fifth argument (the
// attachment) set, and v7's GetCurrentVFS().Stat for the size. An
// asynchronous handler runs once the upload is published (a synchronous one runs before an
// atomic upload is in place, and cannot attach it), and the client does not wait for the mail
// spool. A file over 1 MiB is announced without the attachment.
{
  var path = CtxRelPath();
  var st = GetCurrentVFS().Stat(path);
  if (!st.Ok()) {
    Log.Error("cannot mail " + path + ": " + st.ErrorMsg());
    Exit(1);
  }
  var size = st.Info().Size;
  var name = path.substring(path.lastIndexOf("/") + 1);
  var body = "User " + Session.GetUserID() + " uploaded " + path + " (" + size + " bytes) over " +
    Session.GetProtocol() + " from " + Session.GetRemoteAddress() + ".\n";
  var attachment = path;
  if (size > 1024 * 1024) {
    attachment = "";
    body += "The file is too large to attach; fetch it from the server.\n";
  }
  if (!SendMail("", "team@example.com", "New file: " + name, body, attachment)) {
    Log.Error("mail about " + path + " not queued");
  }
}
