var proto = Session.GetProtocol();
switch (proto) {
  case "FTP":
  case "FTPS":
    Log("ftp family");
    break;
  case "SFTP":
  case "SCP":
    Log("ssh family");
    break;
  default:
    Log("other");
}
