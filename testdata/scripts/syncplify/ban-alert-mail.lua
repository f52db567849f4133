-- OnBlocklistAdd, mode: async, in Lua: mail the security team when an address is banned (by
-- the protector after repeated failures, or by a script's Terminate(true)), with what its
-- session was doing when it happened. Follows the knowledge base's SendMail article ("How to
-- email a list of uploaded files") on the v7 event table's OnBlocklistAdd.
local ip = Conn.GetRemoteAddress()
local lines = {
  'Address:  ' .. ip,
  'Protocol: ' .. Conn.GetProtocol(),
  'Site:     ' .. Conn.GetVirtualSite(),
  'Time:     ' .. Date().toUTCString(),
}
if Session then
  lines[#lines + 1] = 'Last command: ' .. Session.GetLastCommand()
  lines[#lines + 1] = 'Last error:   ' .. Session.GetLastError()
end
local ok, err = SendMail('', 'security@example.com', 'wharf banned ' .. ip, table.concat(lines, '\n') .. '\n', '')
if not ok then Log.Error('ban alert not queued: ' .. err) end
