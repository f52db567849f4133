// A Syncplify-style script: refuse executable files, uploaded under such a name or given one
// by a rename (attach it to BeforeFileUpload and BeforeFileRename). Names are read as
// Windows reads them: any case, trailing dots and spaces dropped ("setup.exe." is
// setup.exe), and each part between colons (streams: "setup.exe::$DATA") checked.
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

if (EventHandler() === 'BeforeFileRename') {
  if (isExecutable(CtxRelTargetPath())) {
    Log.Warn('refused rename to an executable: ' + CtxRelPath() + ' -> ' + CtxRelTargetPath());
    Session.BlockOperation();
  }
} else if (isExecutable(CtxRelPath())) {
  Log.Warn('refused upload of an executable: ' + CtxRelPath());
  Session.BlockOperation();
}
