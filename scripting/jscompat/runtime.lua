-- The JavaScript runtime of translated scripts. It is compiled once per process and run once
-- per Lua state (with the state's real globals); the table it returns is exposed to scripts
-- read-only as __jsrt. Nothing here keeps per-run state: every value it creates belongs to the
-- run that asked for it.
local go = ...
local type, select, setmetatable, getmetatable, rawget, rawset, rawequal, error, pcall, tostring, next =
  type, select, setmetatable, getmetatable, rawget, rawset, rawequal, error, pcall, tostring, next
-- math.huge is the largest float in gopher-lua, not infinity.
local floor, huge = math.floor, 1 / 0
local ssub, sfind, slower, supper, sbyte, schar, srep, sgsub =
  string.sub, string.find, string.lower, string.upper, string.byte, string.char, string.rep, string.gsub
local numstr, tonum, fmod = go.numstr, go.tonum, math.fmod
local NaN = 0 / 0
-- Computed at run time: the compiler folds the constant -0 to 0.
local zero = 0
local NEGZERO = -zero

-- Keys of the hidden fields of arrays and objects: tables, so no JS key (always a string or
-- an array index) can collide with them.
local KEYS, KI, ERR = {}, {}, {}
local ArrMT, ObjMT, ThrowMT, ReMT = {}, {}, {}, {}
local null = setmetatable({}, {
  __tostring = function() return "null" end,
  __index = function(_, k) error("TypeError: Cannot read properties of null (reading '" .. tostring(k) .. "')", 2) end,
  __newindex = function() error("TypeError: Cannot set properties of null", 2) end,
  __metatable = "null"})

local R = {}
R.null = null

local function freeze(t, name)
  return setmetatable({}, {__index = t, __metatable = "locked",
    __newindex = function() error(name .. " is read-only", 2) end})
end

local str, num, keys, join, mkerr, throw

local function isarr(v) return type(v) == "table" and getmetatable(v) == ArrMT end
local function isobj(v) return type(v) == "table" and getmetatable(v) == ObjMT end
-- A RegExp is a table {its compiled expression, its lastIndex} (regexp.go).
local function isre(v) return type(v) == "table" and getmetatable(v) == ReMT end

-- newarr makes an array of n elements from a table holding element i at t[i + 2]. The
-- length is kept at t[1]: all of an array is in its table's array part (a hashed key would
-- cost gopher-lua a map per array).
local function newarr(t, n)
  t[1] = n
  return setmetatable(t, ArrMT)
end
R.A = newarr

-- newobj makes an object from the list of its keys (in order) and a table of its values.
local function newobj(ks, t)
  t[KEYS] = ks
  return setmetatable(t, ObjMT)
end
R.O = newobj

local function truthy(v)
  if v == nil or v == false or v == null or v == 0 or v == "" then return false end
  return v == v
end
R.T = truthy

-- index returns k as an array index when it is one (a number, or a string in canonical form).
local function index(k)
  if type(k) == "number" then
    if k >= 0 and k == floor(k) and k < 4294967295 then return k end
    return nil
  end
  if type(k) == "string" then
    local b = sbyte(k, 1)
    if b and b >= 48 and b <= 57 then
      local n = tonum(k)
      if n == n and n == floor(n) and n < 4294967295 and numstr(n) == k then return n end
    end
  end
  return nil
end

local function errstr(o)
  local n, m = o.name, o.message
  n = n == nil and "Error" or str(n)
  m = m == nil and "" or str(m)
  if n == "" then return m end
  if m == "" then return n end
  return n .. ": " .. m
end

str = function(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return numstr(v) end
  if v == nil then return "undefined" end
  if t == "boolean" then return v and "true" or "false" end
  if t == "table" then
    local mt = getmetatable(v)
    if mt == ArrMT then return join(v, ",") end
    if mt == ObjMT then
      if rawget(v, ERR) then return errstr(v) end
      return "[object Object]"
    end
    if v == null then return "null" end
    if mt == ReMT then return go.reString(v) end
  end
  if t == "function" then return "function () { [native code] }" end
  return tostring(v)
end
R.str = str

-- prim converts an object to a primitive; hint "number" is used by relational operators.
local function prim(v, hint)
  local t = type(v)
  if t == "table" and v ~= null then return str(v) end
  if t == "userdata" then
    if hint == "number" then
      local f = v.valueOf
      if f then return f() end
    end
    return tostring(v)
  end
  if t == "function" then return str(v) end
  return v
end

num = function(v)
  local t = type(v)
  if t == "number" then return v end
  if t == "string" then return tonum(v) end
  if v == nil then return NaN end
  if t == "boolean" then return v and 1 or 0 end
  if v == null then return 0 end
  local p = prim(v, "number")
  if type(p) == "number" then return p end
  if type(p) == "string" then return tonum(p) end
  return NaN
end
R.num = num

local callable = go.callable
function R.typeof(v)
  local t = type(v)
  if t == "nil" then return "undefined" end
  if t == "table" or t == "userdata" then
    -- Host functions with fields (Log, Date) are callable tables.
    if t == "table" and (getmetatable(v) == ArrMT or getmetatable(v) == ObjMT) then return "object" end
    if callable(v) then return "function" end
    return "object"
  end
  return t
end

function R.add(a, b)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then return a + b end
  if ta == "string" and tb == "string" then return a .. b end
  if (ta == "table" and a ~= null) or ta == "userdata" or ta == "function" then a = prim(a); ta = type(a) end
  if (tb == "table" and b ~= null) or tb == "userdata" or tb == "function" then b = prim(b); tb = type(b) end
  if ta == "string" or tb == "string" then return str(a) .. str(b) end
  return num(a) + num(b)
end


function R.sub(a, b)
  if type(a) == "number" and type(b) == "number" then return a - b end
  return num(a) - num(b)
end
function R.mul(a, b)
  if type(a) == "number" and type(b) == "number" then return a * b end
  return num(a) * num(b)
end
function R.div(a, b)
  if type(a) == "number" and type(b) == "number" then return a / b end
  return num(a) / num(b)
end
function R.mod(a, b) return fmod(num(a), num(b)) end
function R.pow(a, b)
  a, b = num(a), num(b)
  if b ~= b then return NaN end
  if b == 0 then return 1 end
  return a ^ b
end
function R.neg(a) return -num(a) end
function R.inc(a) return num(a) + 1 end
function R.dec(a) return num(a) - 1 end

local band, bor, bxor, shl, shr, ushr, bnot = go.band, go.bor, go.bxor, go.shl, go.shr, go.ushr, go.bnot
function R.band(a, b) return band(num(a), num(b)) end
function R.bor(a, b) return bor(num(a), num(b)) end
function R.bxor(a, b) return bxor(num(a), num(b)) end
function R.shl(a, b) return shl(num(a), num(b)) end
function R.shr(a, b) return shr(num(a), num(b)) end
function R.ushr(a, b) return ushr(num(a), num(b)) end
function R.bnot(a) return bnot(num(a)) end

local function eq(a, b)
  local ta, tb = type(a), type(b)
  if ta == tb then
    if ta == "table" or ta == "userdata" then return rawequal(a, b) end
    return a == b
  end
  local an, bn = a == nil or a == null, b == nil or b == null
  if an or bn then return an and bn end
  if ta == "boolean" then return eq(a and 1 or 0, b) end
  if tb == "boolean" then return eq(a, b and 1 or 0) end
  if ta == "number" and tb == "string" then return a == tonum(b) end
  if ta == "string" and tb == "number" then return tonum(a) == b end
  if ta == "table" or ta == "userdata" then return eq(prim(a), b) end
  if tb == "table" or tb == "userdata" then return eq(a, prim(b)) end
  return false
end
R.eq = eq

-- seq is === for values whose types are not known statically: Lua's == would call a
-- userdata's __eq (two Date objects with the same time are different objects in JS).
function R.seq(a, b)
  if type(a) == "userdata" then return rawequal(a, b) end
  return a == b
end

local function lt(a, b)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then return a < b end
  if ta == "string" and tb == "string" then return a < b end
  a, b = prim(a, "number"), prim(b, "number")
  if type(a) == "string" and type(b) == "string" then return a < b end
  return num(a) < num(b)
end
local function le(a, b)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then return a <= b end
  if ta == "string" and tb == "string" then return a <= b end
  a, b = prim(a, "number"), prim(b, "number")
  if type(a) == "string" and type(b) == "string" then return a <= b end
  return num(a) <= num(b)
end
R.lt, R.le = lt, le
function R.gt(a, b) return lt(b, a) end
function R.ge(a, b) return le(b, a) end

-- Errors. A JS throw raises a boxed value so that a thrown string is not mistaken for a Lua
-- run-time error; the box prints like an uncaught exception in the server log.
ThrowMT.__tostring = function(b) return b.where .. "uncaught exception: " .. str(b.v) end
throw = function(v, where)
  error(setmetatable({v = v, where = where or ""}, ThrowMT), 0)
end
R.throw = throw

mkerr = function(name, msg)
  local o = newobj({"name", "message"}, {name = name, message = msg})
  o[ERR] = true
  return o
end
-- typeerror raises a TypeError as a Lua error with the position of the script's line (level
-- 4 in gopher-lua, which counts error itself: the script called a helper that called
-- typeerror); catch turns it into an Error object.
local function typeerror(msg, level) error("TypeError: " .. msg, level or 4) end

-- caught converts what pcall caught to the value a catch clause binds.
function R.caught(e)
  if type(e) == "table" and getmetatable(e) == ThrowMT then return e.v end
  local msg = tostring(e)
  local name = "Error"
  local n, rest = msg:match("^[^ ]-:%d+: (%a*Error): (.*)$")
  if n then name, msg = n, rest
  else
    local m2 = msg:match("^[^ ]-:%d+: (.*)$")
    if m2 then msg = m2 end
    if msg:find("attempt to ", 1, true) then name = "TypeError" end
  end
  return mkerr(name, msg)
end

function R.rethrow(e) error(e, 0) end

function R.newerror(kind, msg)
  if msg == nil then msg = "" else msg = str(msg) end
  return mkerr(kind, msg)
end

-- Host values: a nil result of a wharf API call is JS null, a Lua sequence a JS array.
local function toarr(t)
  local n = #t
  local a = {n}
  for i = 1, n do a[i + 1] = t[i] end
  return newarr(a, n)
end
local function host(v)
  if v == nil then return null end
  if type(v) == "table" and getmetatable(v) == nil then return toarr(v) end
  return v
end
-- Go versions of str and host for the translated code; the Lua ones serve the runtime itself.
R.str, R.host = go.fast(str, ArrMT, null)
go.reinit(ReMT, ArrMT, ObjMT, KEYS, null, str)

local SM, AM, NM, REM = {}, {}, {}, {}

local function get(o, k)
  local t = type(o)
  if t == "table" then
    local mt = getmetatable(o)
    if mt == ArrMT then
      if type(k) == "number" then
        if k >= 0 then return o[k + 2] end
        return nil
      end
      if k == "length" then return o[1] end
      local i = index(k)
      if i then return o[i + 2] end
      return rawget(o, k)
    elseif mt == ObjMT then
      if type(k) == "string" then return o[k] end
      return o[str(k)]
    elseif mt == ReMT then
      -- (its own slots are integer keys: a script's keys are strings)
      if type(k) == "string" then return o[k] end
      return o[str(k)]
    elseif o == null then
      typeerror("Cannot read properties of null (reading '" .. str(k) .. "')")
    end
    return host(o[k])
  elseif t == "string" then
    if k == "length" then return #o end
    local i = index(k)
    if i and i < #o then return ssub(o, i + 1, i + 1) end
    return nil
  elseif t == "userdata" then
    return host(o[k])
  elseif t == "nil" then
    typeerror("Cannot read properties of undefined (reading '" .. str(k) .. "')")
  end
  return nil
end
R.get = go.fastget(get, ArrMT, ObjMT)

-- opt is the ?. of a property read.
function R.opt(o, k)
  if o == nil or o == null then return nil end
  return get(o, k)
end

local function setlen(a, n)
  if n ~= n or n < 0 or n ~= floor(n) or n >= 4294967296 then throw(mkerr("RangeError", "Invalid array length")) end
  local old = a[1]
  for i = n, old - 1 do a[i + 2] = nil end
  a[1] = n
end

local function set(o, k, v)
  local t = type(o)
  if t == "table" then
    local mt = getmetatable(o)
    if mt == ArrMT then
      local i = index(k)
      if i then
        o[i + 2] = v
        if i >= o[1] then o[1] = i + 1 end
        return v
      end
      if k == "length" then setlen(o, num(v)) return v end
      rawset(o, str(k), v)
      return v
    elseif mt == ObjMT then
      if type(k) ~= "string" then k = str(k) end
      if o[k] == nil then
        local ki = o[KI]
        if not ki then
          ki = {}
          local ks = o[KEYS]
          for j = 1, #ks do if ks[j] then ki[ks[j]] = j end end
          o[KI] = ki
        end
        if not ki[k] then
          local ks = o[KEYS]
          ks[#ks + 1] = k
          ki[k] = #ks
        end
      end
      o[k] = v
      return v
    elseif mt == ReMT then
      if type(k) ~= "string" then k = str(k) end
      o[k] = v
      return v
    elseif o == null then
      typeerror("Cannot set properties of null (setting '" .. str(k) .. "')")
    end
    o[k] = v
    return v
  elseif t == "userdata" then
    o[k] = v
    return v
  elseif t == "nil" then
    typeerror("Cannot set properties of undefined (setting '" .. str(k) .. "')")
  end
  return v
end
R.set = set

function R.del(o, k)
  if isarr(o) then
    local i = index(k)
    if i then o[i + 2] = nil else rawset(o, str(k), nil) end
    return true
  end
  if isobj(o) then
    k = str(k)
    if o[k] == nil and not o[KI] then
      local ks = o[KEYS]
      local found = false
      for j = 1, #ks do if ks[j] == k then found = true end end
      if not found then return true end
    end
    local ki = o[KI]
    if not ki then
      ki = {}
      local ks = o[KEYS]
      for j = 1, #ks do if ks[j] then ki[ks[j]] = j end end
      o[KI] = ki
    end
    local j = ki[k]
    if j then
      o[KEYS][j] = false
      ki[k] = nil
    end
    o[k] = nil
    return true
  end
  if o == nil or o == null then typeerror("Cannot convert undefined or null to object") end
  return true
end

-- has is the `in` operator.
function R.has(k, o)
  if isarr(o) then
    if k == "length" then return true end
    local i = index(k)
    return i ~= nil and o[i + 2] ~= nil
  end
  if isobj(o) then
    k = str(k)
    if o[k] ~= nil then return true end
    local ks = o[KEYS]
    for j = 1, #ks do if ks[j] == k then return true end end
    return false
  end
  typeerror("Cannot use 'in' operator to search for '" .. str(k) .. "' in " .. str(o))
end

-- keys lists an object's own enumerable keys in JS order: array indices ascending, then the
-- other keys in insertion order.
keys = function(o)
  local out = {}
  if isarr(o) then
    for i = 0, o[1] - 1 do
      if o[i + 2] ~= nil then out[#out + 1] = numstr(i) end
    end
    return out
  end
  if isobj(o) then
    local ks, idx, other = o[KEYS], {}, {}
    for j = 1, #ks do
      local k = ks[j]
      if k then
        local i = index(k)
        if i then idx[#idx + 1] = i else other[#other + 1] = k end
      end
    end
    if #idx > 0 then
      table.sort(idx)
      for j = 1, #idx do out[j] = numstr(idx[j]) end
    end
    for j = 1, #other do out[#out + 1] = other[j] end
    return out
  end
  if type(o) == "string" then
    for i = 0, #o - 1 do out[i + 1] = numstr(i) end
  end
  return out
end
-- forin is the key list of for…in (nothing for null and undefined).
R.forin = keys

-- iter is the array a for…of walks.
function R.iter(o)
  if isarr(o) then return o end
  if type(o) == "string" then
    local a, n = {0}, 0
    for ch in o:gmatch("[%z\1-\127\194-\244][\128-\191]*") do a[n + 2] = ch; n = n + 1 end
    return newarr(a, n)
  end
  typeerror(str(o) .. " is not iterable")
end


-- rest collects a rest parameter.
function R.rest(...)
  local n = select("#", ...)
  return newarr({n, ...}, n)
end

-- Method calls: o.k(…). Functions stored in objects are called without `this`.
function R.call(o, k, ...)
  local t = type(o)
  if t == "string" then
    local f = SM[k]
    if f then return f(o, ...) end
  elseif t == "table" then
    local mt = getmetatable(o)
    if mt == ArrMT then
      local f = AM[k]
      if f then return f(o, ...) end
      local i = index(k)
      if i then f = o[i + 2] else f = rawget(o, k) end
      if f then return f(...) end
    elseif mt == ObjMT then
      local f = o[k]
      if f ~= nil then return f(...) end
      if k == "hasOwnProperty" then return R.has(..., o) end
      if k == "toString" then return str(o) end
    elseif mt == ReMT then
      local f = REM[k]
      if f then return f(o, ...) end
      if type(k) == "string" then f = rawget(o, k) end
      if f ~= nil then return f(...) end
    elseif o ~= null then
      local f = o[k]
      if f ~= nil then return host(f(...)) end
    end
  elseif t == "userdata" then
    local f = o[k]
    if f ~= nil then return host(f(...)) end
  elseif t == "number" then
    local f = NM[k]
    if f then return f(o, ...) end
  elseif t == "boolean" and k == "toString" then
    return str(o)
  end
  if o == nil or o == null then
    typeerror("Cannot read properties of " .. str(o) .. " (reading '" .. str(k) .. "')")
  end
  typeerror(str(k) .. " is not a function")
end

-- test and exec calls go straight to the RegExp methods in Go (a regular expression test is
-- the usual filter of a file name), and through call for other values.
R.test, R.exec = go.remethods(R.call)

-- Strings. Indices count bytes: the same as JS for ASCII text.
local function toint(n, def)
  if n == nil then return def end
  n = num(n)
  if n ~= n then return 0 end
  if n == huge or n == -huge then return n end
  if n < 0 then return -floor(-n) end
  return floor(n)
end
local function clamp(n, lo, hi)
  if n < lo then return lo end
  if n > hi then return hi end
  return n
end

SM.toString = function(s) return s end
SM.valueOf = SM.toString
SM.toLowerCase = function(s) return slower(s) end
SM.toUpperCase = function(s) return supper(s) end
SM.trim = function(s) return (sgsub(s, "^%s+", ""):gsub("%s+$", "")) end
SM.trimStart = function(s) return (sgsub(s, "^%s+", "")) end
SM.trimEnd = function(s) return (sgsub(s, "%s+$", "")) end
SM.charAt = function(s, i)
  i = toint(i, 0)
  if i < 0 or i >= #s then return "" end
  return ssub(s, i + 1, i + 1)
end
SM.charCodeAt = function(s, i)
  i = toint(i, 0)
  if i < 0 or i >= #s then return NaN end
  return sbyte(s, i + 1)
end
SM.indexOf = function(s, sub, from)
  sub = str(sub)
  from = clamp(toint(from, 0), 0, #s)
  local i = sfind(s, sub, from + 1, true)
  return i and i - 1 or -1
end
SM.lastIndexOf = function(s, sub, from)
  sub = str(sub)
  local last = -1
  local limit = from == nil and #s or clamp(toint(from, #s), 0, #s)
  local i = sfind(s, sub, 1, true)
  while i and i - 1 <= limit do
    last = i - 1
    i = sfind(s, sub, i + 1, true)
  end
  return last
end
SM.includes = function(s, sub, from) return SM.indexOf(s, sub, from) >= 0 end
SM.startsWith = function(s, sub, pos)
  sub = str(sub)
  pos = clamp(toint(pos, 0), 0, #s)
  return ssub(s, pos + 1, pos + #sub) == sub
end
SM.endsWith = function(s, sub, e)
  sub = str(sub)
  e = clamp(toint(e, #s), 0, #s)
  return e - #sub >= 0 and ssub(s, e - #sub + 1, e) == sub
end
SM.substring = function(s, a, b)
  local n = #s
  a = clamp(toint(a, 0), 0, n)
  b = clamp(toint(b, n), 0, n)
  -- (gopher-lua mis-compiles a, b = b, a: swap through a temporary)
  if a > b then local x = a; a = b; b = x end
  return ssub(s, a + 1, b)
end
SM.substr = function(s, a, len)
  local n = #s
  a = toint(a, 0)
  if a < 0 then a = math.max(n + a, 0) end
  a = math.min(a, n)
  len = clamp(toint(len, n - a), 0, n - a)
  return ssub(s, a + 1, a + len)
end
SM.slice = function(s, a, b)
  local n = #s
  a, b = toint(a, 0), toint(b, n)
  if a < 0 then a = math.max(n + a, 0) else a = math.min(a, n) end
  if b < 0 then b = math.max(n + b, 0) else b = math.min(b, n) end
  if a >= b then return "" end
  return ssub(s, a + 1, b)
end
-- touint32 is ToUint32 (split's limit).
local function touint32(n)
  n = toint(n, 0)
  if n ~= n or n == huge or n == -huge then return 0 end
  n = fmod(n, 4294967296)
  if n < 0 then n = n + 4294967296 end
  return n
end
SM.split = function(s, sep, limit)
  local out, n = {0}, 0
  limit = limit == nil and 4294967295 or touint32(limit)
  if isre(sep) then return go.reSplit(sep, s, limit) end
  if limit == 0 then return newarr(out, 0) end
  if sep == nil then out[2] = s; return newarr(out, 1) end
  sep = str(sep)
  if sep == "" then
    for i = 1, math.min(#s, limit) do out[i + 1] = ssub(s, i, i) end
    return newarr(out, math.min(#s, limit))
  end
  local pos = 1
  while true do
    local i, j = sfind(s, sep, pos, true)
    if not i then break end
    out[n + 2] = ssub(s, pos, i - 1); n = n + 1
    if n >= limit then return newarr(out, n) end
    pos = j + 1
  end
  out[n + 2] = ssub(s, pos); n = n + 1
  return newarr(out, n)
end
SM.concat = function(s, ...)
  local r = s
  for i = 1, select("#", ...) do r = r .. str((select(i, ...))) end
  return r
end
SM["repeat"] = function(s, n)
  n = toint(n, 0)
  if n < 0 or n == huge then throw(mkerr("RangeError", "Invalid count value: " .. numstr(n))) end
  return srep(s, n)
end
local function pad(s, n, fill, left)
  n = toint(n, 0)
  fill = fill == nil and " " or str(fill)
  if n <= #s or fill == "" then return s end
  local need = n - #s
  local p = ssub(srep(fill, floor(need / #fill) + 1), 1, need)
  if left then return p .. s end
  return s .. p
end
SM.padStart = function(s, n, fill) return pad(s, n, fill, true) end
SM.padEnd = function(s, n, fill) return pad(s, n, fill, false) end

-- expand applies the $ patterns of a replacement string.
local function expand(rep, matched, pre, post)
  if not sfind(rep, "$", 1, true) then return rep end
  return (sgsub(rep, "%$([%$&`'])", function(c)
    if c == "$" then return "$" end
    if c == "&" then return matched end
    if c == "`" then return pre end
    return post
  end))
end
local reProp, reNew = go.reProp, go.reNew
local function replace(s, pat, rep, all)
  if isre(pat) then
    if all and not reProp(pat, "global") then typeerror("replaceAll must be called with a global RegExp") end
    if type(rep) ~= "function" then rep = str(rep) end
    return go.reReplace(pat, s, rep)
  end
  if type(pat) ~= "string" then pat = str(pat) end
  local out, pos, n = {}, 1, 0
  while true do
    local i, j = sfind(s, pat, pos, true)
    if not i then break end
    local r
    if type(rep) == "function" then r = str(rep(pat, i - 1, s)) else r = expand(str(rep), pat, ssub(s, 1, i - 1), ssub(s, j + 1)) end
    n = n + 1; out[n] = ssub(s, pos, i - 1)
    n = n + 1; out[n] = r
    if pat == "" then
      if i > #s then pos = i + 1; break end
      n = n + 1; out[n] = ssub(s, i, i)
      pos = i + 1
    else
      pos = j + 1
    end
    if not all then break end
  end
  n = n + 1; out[n] = ssub(s, pos)
  return table.concat(out)
end
SM.replace = function(s, pat, rep) return replace(s, pat, rep, false) end
SM.replaceAll = function(s, pat, rep) return replace(s, pat, rep, true) end

-- Regular expressions (regexp.go does the matching).
local function RegExp(p, f)
  if not isre(p) then p = p == nil and "" or str(p) end
  if f ~= nil then f = str(f) end
  local re, err = reNew(p, f)
  if re == nil then throw(mkerr("SyntaxError", err)) end
  return re
end
R.RegExp = RegExp
-- re makes the RegExp of a literal, which the translator has compiled once already.
R.re = reNew
ReMT.__index = function(re, k)
  if k == "lastIndex" then return rawget(re, 2) end
  local m = REM[k]
  if m then return m end
  if type(k) == "string" then return reProp(re, k) end
  return nil
end
-- The flags and source are read-only accessors: assigning them does nothing, as in JS.
local reReadOnly = {source = true, flags = true, global = true, ignoreCase = true, multiline = true,
  dotAll = true, unicode = true, sticky = true, hasIndices = true, unicodeSets = true}
ReMT.__newindex = function(re, k, v)
  if k == "lastIndex" then rawset(re, 2, v)
  elseif type(k) == "string" and not reReadOnly[k] then rawset(re, k, v) end
end
REM.test = function(re, s) return go.reTest(re, str(s)) end
REM.exec = function(re, s) return go.reExec(re, str(s)) end
REM.toString = function(re) return go.reString(re) end
SM.match = function(s, p)
  if not isre(p) then p = RegExp(p) end
  return go.reMatch(p, s)
end
SM.matchAll = function(s, p)
  if not isre(p) then p = RegExp(p, "g")
  elseif not reProp(p, "global") then typeerror("String.prototype.matchAll called with a non-global RegExp argument") end
  return go.reMatchAll(p, s)
end
SM.search = function(s, p)
  if not isre(p) then p = RegExp(p) end
  return go.reSearch(p, s)
end

-- Arrays. Element i is at a[i + 2] and the length at a[1] (see newarr).
join = function(a, sep)
  sep = sep == nil and "," or str(sep)
  local parts = {}
  for i = 1, a[1] do
    local v = a[i + 1]
    if v == nil or v == null then parts[i] = "" else parts[i] = str(v) end
  end
  return table.concat(parts, sep)
end
AM.join = join
AM.toString = function(a) return join(a, ",") end
AM.push = function(a, ...)
  local n = a[1]
  local c = select("#", ...)
  for i = 1, c do a[n + i + 1] = (select(i, ...)) end
  a[1] = n + c
  return n + c
end
AM.pop = function(a)
  local n = a[1]
  if n == 0 then return nil end
  local v = a[n + 1]
  a[n + 1] = nil
  a[1] = n - 1
  return v
end
AM.shift = function(a)
  local n = a[1]
  if n == 0 then return nil end
  local v = a[2]
  for i = 3, n + 1 do a[i - 1] = a[i] end
  a[n + 1] = nil
  a[1] = n - 1
  return v
end
AM.unshift = function(a, ...)
  local n, c = a[1], select("#", ...)
  for i = n + 1, 2, -1 do a[i + c] = a[i] end
  for i = 1, c do a[i + 1] = (select(i, ...)) end
  a[1] = n + c
  return n + c
end
local function relidx(i, n, def)
  i = toint(i, def)
  if i < 0 then return math.max(n + i, 0) end
  return math.min(i, n)
end
AM.indexOf = function(a, v, from)
  local n = a[1]
  local start = 0
  if from ~= nil then start = relidx(from, n, 0) end
  if type(v) == "userdata" then
    for i = start, n - 1 do if rawequal(a[i + 2], v) then return i end end
    return -1
  end
  if v == nil or v ~= v then return -1 end
  for i = start, n - 1 do
    if a[i + 2] == v then return i end
  end
  return -1
end
AM.lastIndexOf = function(a, v)
  for i = a[1] - 1, 0, -1 do
    local x = a[i + 2]
    if x ~= nil and x == v then return i end
  end
  return -1
end
AM.includes = function(a, v)
  for i = 2, a[1] + 1 do
    local x = a[i]
    if x == v or (v ~= v and x ~= x) then return true end
  end
  return false
end
AM.slice = function(a, s, e)
  local n = a[1]
  s, e = relidx(s, n, 0), relidx(e, n, n)
  local out, m = {0}, 0
  for i = s, e - 1 do out[m + 2] = a[i + 2]; m = m + 1 end
  return newarr(out, m)
end
AM.splice = function(a, ...)
  local argc = select("#", ...)
  local s, dc = ...
  local n = a[1]
  s = relidx(s, n, 0)
  local c = math.max(argc - 2, 0)
  -- splice(start) removes to the end; splice() removes nothing.
  if argc < 2 then dc = argc == 0 and 0 or n - s end
  dc = clamp(toint(dc, 0), 0, n - s)
  local removed = {dc}
  for i = 0, dc - 1 do removed[i + 2] = a[s + i + 2] end
  local tail = {}
  for i = s + dc, n - 1 do tail[#tail + 1] = a[i + 2] end
  local ntail = n - s - dc
  for i = s, n - 1 do a[i + 2] = nil end
  for i = 1, c do a[s + i + 1] = (select(i + 2, ...)) end
  for i = 1, ntail do a[s + c + i + 1] = tail[i] end
  a[1] = s + c + ntail
  return newarr(removed, dc)
end
AM.concat = function(a, ...)
  local out, m = {0}, 0
  for i = 0, a[1] - 1 do out[m + 2] = a[i + 2]; m = m + 1 end
  for j = 1, select("#", ...) do
    local b = (select(j, ...))
    if isarr(b) then
      for i = 0, b[1] - 1 do out[m + 2] = b[i + 2]; m = m + 1 end
    else
      out[m + 2] = b; m = m + 1
    end
  end
  return newarr(out, m)
end
AM.reverse = function(a)
  local n = a[1]
  for i = 0, floor(n / 2) - 1 do local x = a[i + 2]; a[i + 2] = a[n + 1 - i]; a[n + 1 - i] = x end
  return a
end
AM.forEach = function(a, f)
  for i = 0, a[1] - 1 do
    local v = a[i + 2]
    if v ~= nil then f(v, i, a) end
  end
end
AM.map = function(a, f)
  local n = a[1]
  local out = {n}
  for i = 0, n - 1 do
    local v = a[i + 2]
    if v ~= nil then out[i + 2] = f(v, i, a) end
  end
  return newarr(out, n)
end
AM.filter = function(a, f)
  local out, m = {0}, 0
  for i = 0, a[1] - 1 do
    local v = a[i + 2]
    if v ~= nil and truthy(f(v, i, a)) then out[m + 2] = v; m = m + 1 end
  end
  return newarr(out, m)
end
AM.some = function(a, f)
  for i = 0, a[1] - 1 do
    local v = a[i + 2]
    if v ~= nil and truthy(f(v, i, a)) then return true end
  end
  return false
end
AM.every = function(a, f)
  for i = 0, a[1] - 1 do
    local v = a[i + 2]
    if v ~= nil and not truthy(f(v, i, a)) then return false end
  end
  return true
end
AM.find = function(a, f)
  for i = 0, a[1] - 1 do
    local v = a[i + 2]
    if truthy(f(v, i, a)) then return v end
  end
  return nil
end
AM.findIndex = function(a, f)
  for i = 0, a[1] - 1 do
    if truthy(f(a[i + 2], i, a)) then return i end
  end
  return -1
end
AM.reduce = function(a, f, ...)
  local n, i, acc = a[1], 0, nil
  if select("#", ...) > 0 then
    acc = ...
  else
    while i < n and a[i + 2] == nil do i = i + 1 end
    if i >= n then typeerror("Reduce of empty array with no initial value") end
    acc = a[i + 2]; i = i + 1
  end
  for j = i, n - 1 do
    local v = a[j + 2]
    if v ~= nil then acc = f(acc, v, j, a) end
  end
  return acc
end
-- sort is a stable merge sort; without a comparator it compares the elements' strings, and
-- undefined elements go last, as in JS.
AM.sort = function(a, f)
  local n = a[1]
  local items = {}
  for i = 0, n - 1 do
    local v = a[i + 2]
    if v ~= nil then items[#items + 1] = v end
  end
  local before
  if f == nil then
    before = function(x, y) return str(x) < str(y) end
  else
    before = function(x, y) local r = num(f(x, y)); return r < 0 end
  end
  local m = #items
  local tmp = {}
  local width = 1
  while width < m do
    local i = 1
    while i <= m do
      local mid, hi = math.min(i + width, m + 1), math.min(i + 2 * width, m + 1)
      local l, r, k = i, mid, i
      while l < mid and r < hi do
        if before(items[r], items[l]) then tmp[k] = items[r]; r = r + 1 else tmp[k] = items[l]; l = l + 1 end
        k = k + 1
      end
      while l < mid do tmp[k] = items[l]; l = l + 1; k = k + 1 end
      while r < hi do tmp[k] = items[r]; r = r + 1; k = k + 1 end
      i = i + 2 * width
    end
    -- (gopher-lua mis-compiles a, b = b, a: swap through a temporary)
    local x = items; items = tmp; tmp = x
    width = width * 2
  end
  for i = 1, m do a[i + 1] = items[i] end
  for i = m, n - 1 do a[i + 2] = nil end
  return a
end

-- Numbers.
NM.toString = function(n, radix)
  if radix == nil or num(radix) == 10 then return numstr(n) end
  return go.radix(n, num(radix))
end
NM.toFixed = function(n, d) return go.fixed(n, toint(d, 0)) end
NM.valueOf = function(n) return n end

-- Methods of strings and arrays, for calls on values whose type the translator knows.
R.S = freeze(SM, "string methods")
R.AR = freeze(AM, "array methods")
R.numstr = numstr

-- Globals.
local Math = {PI = math.pi, E = math.exp(1), LN2 = math.log(2), LN10 = math.log(10),
  LOG2E = 1 / math.log(2), LOG10E = 1 / math.log(10), SQRT2 = math.sqrt(2), SQRT1_2 = math.sqrt(0.5)}
local function m1(f) return function(x) return f(num(x)) end end
Math.floor, Math.ceil, Math.abs, Math.sqrt = m1(math.floor), m1(math.ceil), m1(math.abs), m1(math.sqrt)
Math.sin, Math.cos, Math.tan, Math.exp = m1(math.sin), m1(math.cos), m1(math.tan), m1(math.exp)
Math.atan, Math.asin, Math.acos = m1(math.atan), m1(math.asin), m1(math.acos)
Math.log = m1(function(x) if x < 0 then return NaN end if x == 0 then return -huge end return math.log(x) end)
Math.atan2 = function(y, x) return math.atan2(num(y), num(x)) end
Math.pow = R.pow
Math.random = math.random
Math.trunc = m1(function(x) if x ~= x or x == huge or x == -huge then return x end if x < 0 then return -floor(-x) end return floor(x) end)
Math.sign = m1(function(x) if x > 0 then return 1 elseif x < 0 then return -1 end return x end)
Math.round = m1(function(x)
  if x ~= x or x == huge or x == -huge then return x end
  local r = floor(x + 0.5)
  if r == 0 and x < 0 then return NEGZERO end
  return r
end)
Math.max = function(...)
  local r = -huge
  for i = 1, select("#", ...) do
    local v = num((select(i, ...)))
    if v ~= v then return NaN end
    if v > r or (v == 0 and r == 0 and 1 / r < 0) then r = v end
  end
  return r
end
Math.min = function(...)
  local r = huge
  for i = 1, select("#", ...) do
    local v = num((select(i, ...)))
    if v ~= v then return NaN end
    if v < r or (v == 0 and r == 0 and 1 / v < 0) then r = v end
  end
  return r
end
R.Math = freeze(Math, "Math")

local function isnan(v) v = num(v); return v ~= v end
R.isNaN = isnan
R.isFinite = function(v) v = num(v); return v == v and v ~= huge and v ~= -huge end
R.parseInt = function(s, radix) return go.parseInt(str(s), radix == nil and 0 or toint(radix, 0)) end
R.parseFloat = function(s) return go.parseFloat(str(s)) end
R.String = function(...) if select("#", ...) == 0 then return "" end return str((...)) end
R.Number = function(...) if select("#", ...) == 0 then return 0 end return num((...)) end
R.Boolean = truthy
local Number = {MAX_SAFE_INTEGER = 9007199254740991, MIN_SAFE_INTEGER = -9007199254740991,
  EPSILON = 2.220446049250313e-16, MAX_VALUE = 1.7976931348623157e308, MIN_VALUE = 5e-324,
  POSITIVE_INFINITY = huge, NEGATIVE_INFINITY = -huge, NaN = NaN,
  isNaN = function(v) return type(v) == "number" and v ~= v end,
  isInteger = function(v) return type(v) == "number" and v == floor(v) and v ~= huge and v ~= -huge end,
  isFinite = function(v) return type(v) == "number" and v == v and v ~= huge and v ~= -huge end,
  parseInt = R.parseInt, parseFloat = R.parseFloat}
R.NumberNS = freeze(Number, "Number")
local StringNS = {fromCharCode = function(...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = go.fromCode(num((select(i, ...)))) end
  return table.concat(out)
end}
R.StringNS = freeze(StringNS, "String")

local Object = {
  keys = function(o) local ks = keys(o); local a = {0}; for i = 1, #ks do a[i + 1] = ks[i] end return newarr(a, #ks) end,
  values = function(o) local ks = keys(o); local a = {0}; for i = 1, #ks do a[i + 1] = get(o, ks[i]) end return newarr(a, #ks) end,
  entries = function(o)
    local ks = keys(o); local a = {0}
    for i = 1, #ks do a[i + 1] = newarr({2, ks[i], get(o, ks[i])}, 2) end
    return newarr(a, #ks)
  end,
}
-- assign copies the own enumerable properties of each source (objects, arrays, strings) into
-- the target, in key order.
Object.assign = function(target, ...)
  if target == nil or target == null then typeerror("Cannot convert undefined or null to object") end
  for i = 1, select("#", ...) do
    local src = (select(i, ...))
    if src ~= nil and src ~= null then
      local ks = keys(src)
      for j = 1, #ks do set(target, ks[j], get(src, ks[j])) end
    end
  end
  return target
end
R.Object = freeze(Object, "Object")
-- from makes an array of an array, a string's characters or an array-like object ({length: n}),
-- each element passed through f(v, i) when f is given.
local function from(x, f)
  if x == nil or x == null then typeerror(str(x) .. " is not iterable") end
  if f ~= nil and type(f) ~= "function" then typeerror(str(f) .. " is not a function") end
  local src, n
  if isarr(x) or type(x) == "string" then
    src = R.iter(x)
    n = src[1]
  elseif type(x) == "table" or type(x) == "userdata" then
    n = clamp(toint(get(x, "length"), 0), 0, 4294967295)
  else
    n = 0
  end
  local out = {n}
  for i = 0, n - 1 do
    local v
    if src then v = src[i + 2] else v = get(x, i) end
    if f then v = f(v, i) end
    out[i + 2] = v
  end
  return newarr(out, n)
end
R.Array = freeze({isArray = isarr, from = from, of = function(...) return R.rest(...) end}, "Array")

-- new of a host class: a global whose metatable has __new (scripting/class.go).
local ctor = go.ctor
function R.new(C, name, ...)
  if C == nil then throw(mkerr("ReferenceError", name .. " is not defined")) end
  local f = ctor(C)
  if f == nil then typeerror(name .. " is not a constructor") end
  return host(f(...))
end

-- JSON.
local quote = go.quote
local function stringify(v, ind, cur)
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "number" then if v ~= v or v == huge or v == -huge then return "null" end return numstr(v) end
  if t == "boolean" then return v and "true" or "false" end
  if v == null then return "null" end
  if t == "userdata" then
    local f = v.toISOString
    if f then return quote(f()) end
    return nil
  end
  if t ~= "table" then return nil end
  if getmetatable(v) == ReMT then return "{}" end
  local inner = cur .. ind
  local nl, sep, colon = "", ",", ":"
  if ind ~= "" then nl, colon = "\n", ": " end
  local parts = {}
  if isarr(v) then
    for i = 0, v[1] - 1 do
      parts[i + 1] = stringify(v[i + 2], ind, inner) or "null"
    end
    if #parts == 0 then return "[]" end
    if nl == "" then return "[" .. table.concat(parts, ",") .. "]" end
    return "[\n" .. inner .. table.concat(parts, ",\n" .. inner) .. "\n" .. cur .. "]"
  end
  if isobj(v) then
    local ks = keys(v)
    for i = 1, #ks do
      local s = stringify(v[ks[i]], ind, inner)
      if s ~= nil then parts[#parts + 1] = quote(ks[i]) .. colon .. s end
    end
    if #parts == 0 then return "{}" end
    if nl == "" then return "{" .. table.concat(parts, sep) .. "}" end
    return "{\n" .. inner .. table.concat(parts, ",\n" .. inner) .. "\n" .. cur .. "}"
  end
  return nil
end
local JSON = {
  stringify = function(v, _, space)
    local ind = ""
    if type(space) == "number" then ind = srep(" ", clamp(floor(space), 0, 10))
    elseif type(space) == "string" then ind = ssub(space, 1, 10) end
    return stringify(v, ind, "")
  end,
  parse = function(s)
    local v, err = go.jsonParse(str(s), newarr, newobj, null)
    if err then throw(mkerr("SyntaxError", err)) end
    return v
  end,
}
R.JSON = freeze(JSON, "JSON")

function R.newDate(Date, ...)
  if Date == nil then typeerror("Date is not available") end
  return Date(...)
end

return R, freeze(R, "__jsrt")
