function human(bytes) {
  var units = ["B", "KB", "MB", "GB"];
  var i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
  return bytes.toFixed(1) + " " + units[i];
}
Log(human(512)); Log(human(2048)); Log(human(5 * 1024 * 1024)); Log(human(1e12));
