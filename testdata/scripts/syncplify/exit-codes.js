// Any event: Syncplify v7's Exit example: end early, with a code that the log records when it
// is not zero.
{
  if (!Session) {
    Exit(1);
  }
  if (!Session.GetUser()) {
    Exit(2);
  }
  Log("user " + Session.GetUserID());
}
