-- AfterFileUpload and OnConnectionClose, in Lua: the knowledge base's upload list ("How to
-- email a list of uploaded files") with sizes and the space used (v7's VFS Stat and TreeSize). Each upload is noted with its size (synchronously, so the list is
-- complete when the session ends); when the session ends (mode: async), the user gets a report
-- of the session's uploads and of the home folder's size against the allowance, with
-- "Quota warning" in the subject past 80%.
local ALLOWANCE = 1024 * 1024 -- bytes a user may keep; set it to the users' quota

local function human(n)
  if n >= 1048576 then return string.format('%.1f MiB', n / 1048576) end
  if n >= 1024 then return string.format('%.1f KiB', n / 1024) end
  return n .. ' bytes'
end

local vfs = GetCurrentVFS()
if EventHandler() == 'AfterFileUpload' then
  local st = vfs.Stat(CtxRelPath())
  if st.Ok() then
    Session.AddCustomData(st.Info().Size .. ' ' .. CtxRelPath())
  end
  return
end

-- OnConnectionClose
local rows, total = {}, 0
for _, item in ipairs(Session.GetAllCustomData()) do
  local size, path = item:match('^(%d+) (.+)$')
  if size then
    total = total + tonumber(size)
    rows[#rows + 1] = string.format('%12s  %s', human(tonumber(size)), path)
  end
end
if #rows == 0 then return end

local used = vfs.TreeSize('/')
if not used.Ok() then
  Log.Error('cannot measure the home folder: ' .. used.ErrorMsg())
  return
end
local pct = math.floor(used.Size() * 100 / ALLOWANCE)
local user = Session.GetUser()
local subject = string.format('%d file(s), %s uploaded by %s', #rows, human(total), Session.GetUserID())
if pct >= 80 then subject = 'Quota warning: ' .. subject end
local body = table.concat({
  'Session ' .. Session.GetID() .. ' from ' .. Session.GetRemoteAddress() .. ' over ' .. Session.GetProtocol(),
  '',
  table.concat(rows, '\n'),
  '',
  'Uploaded: ' .. human(total),
  string.format('Home folder: %s of %s (%d%%)', human(used.Size()), human(ALLOWANCE), pct),
}, '\n') .. '\n'
local to = 'ops@example.com'
if user and user.EMail ~= '' then to = user.EMail .. ', ' .. to end
local ok, err = SendMail('', to, subject, body, '')
if not ok then Log.Error('report not queued: ' .. err) end
