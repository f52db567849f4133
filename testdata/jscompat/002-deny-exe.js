// A Syncplify-style script: deny executables.
if (ExtractExt(CtxRelPath()) === ".exe") {
  Session.BlockOperation();
}
if (ExtractExt(CtxRelPath()).toLowerCase() === ".pdf") {
  Session.BlockOperation();
}
