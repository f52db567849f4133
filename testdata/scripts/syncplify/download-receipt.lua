-- AfterFileDownload, mode: async, in Lua: delivery receipts for an outbox. When a partner
-- downloads a file from /outbox, the file is moved to /outbox/done (stamped with the time, so
-- it is not fetched twice) and a receipt is mailed to the partner and to operations. Follows
-- Syncplify v7's CtxRelPath page (the event's file, then VFS calls: Stat, MkdirAll, Rename) and
-- the knowledge base's SendMail article.
local path = CtxRelPath()
local name = path:match('^/outbox/([^/]+)$')
if not name then return end

local vfs = GetCurrentVFS()
local st = vfs.Stat(path)
if not st.Ok() then
  Log.Warn('receipt: ' .. path .. ' is gone: ' .. st.ErrorMsg())
  return
end
local done = '/outbox/done/' .. os.date('!%Y%m%dT%H%M%SZ') .. '-' .. name
local r = vfs.MkdirAll('/outbox/done')
if r.Ok() then r = vfs.Rename(path, done) end
if not r.Ok() then
  Log.Error('cannot archive ' .. path .. ': ' .. r.ErrorMsg())
  done = path
end

local user = Session.GetUser()
local to = 'ops@example.com'
if user and user.EMail ~= '' then to = user.EMail .. ', ' .. to end
local body = string.format('%s downloaded %s (%d bytes) over %s from %s at %s.\nArchived as %s.\n',
  Session.GetUserID(), path, st.Info().Size, Session.GetProtocol(), Session.GetRemoteAddress(),
  Date().toUTCString(), done)
local ok, err = SendMail('', to, 'Delivered: ' .. name, body, '')
if not ok then Log.Error('receipt not queued: ' .. err) end
