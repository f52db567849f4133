// AfterFileUpload, mode: async: tell a web service about each upload, in the shape of
// Syncplify v7's GetSecret example: GET <webhook_url>?file=…&user=… with a bearer token, both
// from the site's secret store (config secrets:), never from the script. The client does not
// wait for the call; a failure is logged.
{
  var url = GetSecret("webhook_url");
  var token = GetSecret("webhook_token");
  if (url == "" || token == "") {
    Log.Error("set the secrets webhook_url and webhook_token");
    Exit(1);
  }
  var res = new HttpCli()
    .Url(url + "?file=" + encodeURIComponent(CtxRelPath()) + "&user=" + encodeURIComponent(Session.GetUserID()))
    .Header("Authorization", "Bearer " + token)
    .Timeout(15)
    .Get();
  if (res.IsValid() && res.StatusCode() >= 200 && res.StatusCode() < 300) {
    Log("web hook told of " + CtxRelPath() + ": " + res.StatusCode());
  } else {
    Log.Warn("web hook failed for " + CtxRelPath() + ": " + res.StatusCode() + " " + res.ErrorMsg());
  }
}
