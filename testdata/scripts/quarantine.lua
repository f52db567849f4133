-- quarantine.lua: refuse uploaded files after they were written.
--
-- With atomic uploads (the default for disk VFSs) AfterFileUpload runs while the data is
-- still under a temporary name, and BlockOperation() discards it instead of publishing it:
-- the client's upload fails and nothing appears under the final name. This is the place for
-- a content check; this example decides by name, a scanner helper would look at the data.
--
--   vfs:
--     - {name: inbox, type: disk, root: /srv/inbox, atomic_uploads: true}
--   event_handlers:
--     - event: AfterFileUpload
--       script: quarantine.lua
local suspicious = { '%.infected$', 'eicar', '%.exe%.txt$' }

local name = string.lower(Session.GetRelPath())
for _, pattern in ipairs(suspicious) do
  if name:find(pattern) then
    Log.Warn('quarantined upload ' .. Session.GetRelPath() .. ' (matches ' .. pattern .. ')')
    Session.BlockOperation()
    Exit()
  end
end
