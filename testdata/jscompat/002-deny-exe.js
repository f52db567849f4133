// A Syncplify-style script: deny executables, with names read as Windows reads them (as
// testdata/config/scripts/deny-exe.js): any case, trailing dots and spaces dropped, each
// part between colons (streams) checked.
var denied = { '.exe': true, '.com': true, '.bat': true, '.cmd': true, '.msi': true, '.scr': true, '.ps1': true, '.vbs': true };

function isExecutable(path) {
  var name = path.substring(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
  var parts = name.split(':');
  for (var i = 0; i < parts.length; i++) {
    var part = parts[i];
    var end = part.length;
    while (end > 0 && (part.charAt(end - 1) === '.' || part.charAt(end - 1) === ' ')) {
      end--;
    }
    if (denied[ExtractExt(part.substring(0, end)).toLowerCase()] === true) {
      return true;
    }
  }
  return false;
}

var names = ['/in/report.PDF', '/in/setup.exe', '/in/SETUP.EXE. ', 'evil.exe.', 'evil.exe ', 'x.Exe . .',
  'evil.exe::$DATA', 'notes.txt:evil.bat', 'a\\b.cmd', 'x.txt', '.exe', 'exe', 'report.exe.pdf', 'dots...', '', 'a.b:c.txt'];
for (var i = 0; i < names.length; i++) {
  Log('[' + names[i] + '] ' + isExecutable(names[i]));
}
if (isExecutable(CtxRelPath())) {
  Session.BlockOperation();
}
if (ExtractExt(CtxRelPath()).toLowerCase() === ".pdf") {
  Session.BlockOperation();
}
