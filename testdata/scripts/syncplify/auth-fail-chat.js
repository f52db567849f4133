// OnAuthFail, mode: async: post each failed login to a chat channel through its incoming web
// hook. Follows the old Syncplify manual's standard use of event handlers ("send an email when
// a user fails to log in") in the shape of v7's GetSecret example (the hook's address from the
// secret store, new HttpCli() with a fluent chain) and the v6 HttpCli verbs page (POST of a JSON
// body). The body is JSON ({"text": …}, the shape Slack, Mattermost and Rocket.Chat take). The
// hook's URL carries its own credential, so it is a secret (config secrets: chat_webhook).
// Over SSH the user name comes from the last command ("AUTH <name>"); FTP's is "PASS ****".
{
  var hook = GetSecret("chat_webhook");
  if (hook == "") {
    Log.Error("set the secret chat_webhook");
    Exit(1);
  }
  var m = /^(?:AUTH|USER) (.+)$/.exec(Session.GetLastCommand());
  var text = "Failed login" + (m ? " as " + m[1] : "") + " from " + Session.GetRemoteAddress() +
    " over " + Session.GetProtocol() + " on " + Session.GetVirtualSite() + " at " + new Date().toISOString();
  var res = new HttpCli()
    .Url(hook)
    .Header("Content-Type", "application/json")
    .ReqBody(JSON.stringify({ text: text, username: "wharf" }))
    .Timeout(10)
    .Post();
  if (!res.IsValid() || res.StatusCode() != 200) {
    Log.Warn("chat web hook failed: " + res.StatusCode() + " " + res.ErrorMsg());
  }
}
