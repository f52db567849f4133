if (Session) {
  Log(Session.GetProtocol() + " " + Session.GetUserID());
  var data = Session.GetAllCustomData();
  Log(data.length + " " + data.join("+"));
  Log(Array.isArray(data));
  Log(data.indexOf("b"));
  Log(Session.GetCustomData(1) + "|" + Session.GetCustomData(9) + "|");
  var u = Session.GetUser();
  Log(u === null);
  Log(u ? "user" : "no user");
}
