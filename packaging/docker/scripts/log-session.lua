-- log-session.lua: the session logger of the Syncplify documentation, in Lua.
--
-- Attach it to OnAuthSuccess to log who connected with which session id:
--
--   event_handlers:
--     - event: OnAuthSuccess
--       script: log-session.lua
--
-- Session is nil in events that fire before the session exists (OnNewConnection,
-- BeforeSendSoftwareID), so the script checks for it first.
if Session then
  local sid = Session.GetID()
  local uname = Session.GetUserID()
  Log('User ' .. uname .. ' connected with session ID ' .. sid)
else
  Log('Session object is not available.')
end
