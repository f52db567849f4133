// AfterFileUpload and OnConnectionClose: the first article of Syncplify's scripting knowledge
// base, "How to email a list of uploaded files". Each upload's path is kept in the session's
// custom data; when the session ends, the list is mailed (comma separated, as the article's
// toString() gives it). Attach the script to both events: synchronously to AfterFileUpload
// (the list must be complete when the session ends) and with mode: async to
// OnConnectionClose (nobody waits for the mail spool).
{
  if (Session) {
    if (EventHandler() == "AfterFileUpload") {
      Session.AddCustomData(Session.GetAbsPath());
    } else if (EventHandler() == "OnConnectionClose" && Session.GetAllCustomData().length > 0) {
      SendMail("wharf@example.com", "ops@example.com, Audit Team <audit@example.com>",
        "Files uploaded by " + Session.GetUserID(), Session.GetAllCustomData().toString(), "");
    }
  }
}
