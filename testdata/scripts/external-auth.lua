-- external-auth.lua: accept accounts that are not in the configuration.
--
-- The accounts are kept in this script. AuthenticateUserFromScript() accepts the attempt
-- being handled whatever the built-in check says; an account that is not configured then
-- gets the profile of the catch-all user "*" (home, permissions, limits) under its own id.
--
-- The scripting contract hands scripts neither the attempted password nor, before login
-- succeeds, the login name (GetUserID() is "" until then). The name is in the last command
-- when OnAuthRequest fires ("USER acme" over FTP, "AUTH acme" over SSH), so this script notes
-- it there and decides at OnAuthPassword by name and client network. Use it for accounts that
-- are trusted by where they connect from; checking a password against an external store needs
-- a helper that the contract does not define yet.
--
--   users:
--     - id: "*"                       # profile of script-authenticated accounts
--       home: {vfs: partners, permissions: [list, upload]}
--   event_handlers:
--     - event: OnAuthRequest
--       script: external-auth.lua
--     - event: OnAuthPassword
--       script: external-auth.lua
local accounts = {
  -- login name = allowed client address prefix
  acme   = '203.0.113.',
  globex = '198.51.100.',
}

if EventHandler() == 'OnAuthRequest' then
  local name = Session.GetLastCommand():match('^%u+ (.+)$')
  if name then Session.AddCustomData('login:' .. name) end
  Exit()
end

-- OnAuthPassword: the most recent name the client gave.
local name
for _, item in ipairs(Session.GetAllCustomData()) do
  name = item:match('^login:(.+)$') or name
end
local prefix = name and accounts[name]
if prefix and Session.GetRemoteAddress():sub(1, #prefix) == prefix then
  Log('external account ' .. name .. ' accepted from ' .. Session.GetRemoteAddress())
  Session.AuthenticateUserFromScript()
end
