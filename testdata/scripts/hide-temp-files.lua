-- hide-temp-files.lua: hide temporary files from directory listings.
--
-- In OnDirList, RemoveFromListDir(pattern) hides the entries of the listed directory whose
-- names match the glob (path.Match syntax). A hidden entry also cannot be opened or
-- downloaded by name for the rest of the session.
--
--   event_handlers:
--     - event: OnDirList
--       script: hide-temp-files.lua
Session.RemoveFromListDir('*.tmp')
Session.RemoveFromListDir('~$*')   -- Office lock files
