-- upload-list.lua: log the files a session uploaded when it ends.
--
-- Custom data lives as long as the session and is shared by all of its events, so one
-- event can leave a note for a later one. Attach the same script to both events:
--
--   event_handlers:
--     - event: AfterFileUpload
--       script: upload-list.lua
--     - event: OnConnectionClose
--       script: upload-list.lua
if EventHandler() == 'AfterFileUpload' then
  Session.AddCustomData(CtxRelPath())
elseif EventHandler() == 'OnConnectionClose' then
  local files = Session.GetAllCustomData()
  if #files > 0 then
    Log(Session.GetUserID() .. ' uploaded ' .. #files .. ' file(s): ' .. table.concat(files, ', '))
  end
end
