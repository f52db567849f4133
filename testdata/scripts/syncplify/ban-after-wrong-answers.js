// OnAuthInteractive: Syncplify v7's example (Terminate page): after three wrong
// keyboard-interactive answers in a session, ban the client's address.
{
  var wrong = Session.GetAnsweredQuestions().filter(function (q) { return !q.OK; }).length;
  if (wrong >= 3) {
    Log.Warn("Too many wrong answers from " + Session.GetRemoteAddress() + ", banning");
    Terminate(true);
  }
}
