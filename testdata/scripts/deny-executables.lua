-- deny-executables.lua: refuse executable files, whether uploaded under such a name or given
-- one by a rename.
--
-- BeforeFileUpload and BeforeFileRename are gate events: BlockOperation() refuses the upload
-- before any byte is written, or the rename before the file moves, and the client gets
-- "permission denied" (SFTP) or 550 (FTP). Attach the script to both: a rename is how an
-- upload of "setup.txt" becomes "setup.exe".
--
--   event_handlers:
--     - event: BeforeFileUpload
--       script: deny-executables.lua
--       on_error: block      # if the script fails, refuse the operation too
--     - event: BeforeFileRename
--       script: deny-executables.lua
--       on_error: block
--
-- Names are read as Windows reads them, since that is where executables run: case does not
-- matter ("SETUP.EXE"), trailing dots and spaces are dropped ("setup.exe." and "setup.exe "
-- are setup.exe), and a colon starts a stream of the file ("setup.exe::$DATA",
-- "notes.txt:setup.exe"): every part between colons is checked.
--
-- A symbolic or hard link is a new name too: wharf fires BeforeFileUpload before it creates
-- one, with the link's name in CtxRelPath(), so "setup.exe -> notes.txt" is refused as well.
local denied = {
  ['.exe'] = true, ['.com'] = true, ['.bat'] = true, ['.cmd'] = true,
  ['.msi'] = true, ['.scr'] = true, ['.ps1'] = true, ['.vbs'] = true,
}

-- isExecutable reports whether the last element of a path names an executable.
local function isExecutable(path)
  local name = path:match('[^/\\]*$')
  for part in (name .. ':'):gmatch('([^:]*):') do
    part = part:gsub('[%. ]+$', '')
    if denied[string.lower(ExtractExt(part))] then
      return true
    end
  end
  return false
end

-- CtxRelPath() is the file the event is about; for a rename, CtxRelTargetPath() is its new
-- name.
if EventHandler() == 'BeforeFileRename' then
  if isExecutable(CtxRelTargetPath()) then
    Log.Warn('refused rename to an executable: ' .. CtxRelPath() .. ' -> ' .. CtxRelTargetPath())
    Session.BlockOperation()
  end
elseif isExecutable(CtxRelPath()) then
  Log.Warn('refused upload of an executable: ' .. CtxRelPath())
  Session.BlockOperation()
end
