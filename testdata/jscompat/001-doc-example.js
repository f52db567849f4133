{
  if (Session) {
    var sid = Session.GetID();
    var uname = Session.GetUserID();
    Log('User ' + uname + ' connected with session ID ' + sid);
  } else {
    Log('Session object is not available.');
  }
}
