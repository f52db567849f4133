-- deny-executables.lua: refuse uploads of executable files.
--
-- BeforeFileUpload is a gate event: BlockOperation() refuses the upload before any byte is
-- written, and the client gets "permission denied" (SFTP) or 550 (FTP).
--
--   event_handlers:
--     - event: BeforeFileUpload
--       script: deny-executables.lua
--       on_error: block      # if the script fails, refuse the upload too
local denied = {
  ['.exe'] = true, ['.com'] = true, ['.bat'] = true, ['.cmd'] = true,
  ['.msi'] = true, ['.scr'] = true, ['.ps1'] = true, ['.vbs'] = true,
}

-- CtxRelPath() is the path of the upload that fired this event; extensions are compared
-- case-insensitively so that "SETUP.EXE" is refused as well.
local ext = string.lower(ExtractExt(CtxRelPath()))
if denied[ext] then
  Log.Warn('refused upload of an executable: ' .. CtxRelPath())
  Session.BlockOperation()
end
