--! function: fs_registry_put
--! include: lib/fail.lua
--! include: lib/to_int.lua
--! include: lib/now_ms.lua
--! include: lib/call_chunked.lua
-- Store a new state of a namespace's schema registry and log the change, atomically. The client
-- (fsredis/schema.py) works out the change; this makes it one versioned step that fails when
-- someone else changed the registry since it was read. Writes are checked against the registry
-- compiled into the library, which the client reloads after this call.
--
-- KEYS[1] <ns>:{registry}             hash: "<group>:<feature>" -> JSON definition, and
--                                     #version, #strict (0|1), #updated_at (ms), #updated_by
-- KEYS[2] <ns>:{registry}:log         stream: one entry per change (version, by, changes)
-- KEYS[3] fsredis:{registry}:namespaces  set of the namespaces that have a registry
-- ARGV[1] namespace
-- ARGV[2] expected version: the #version the change was computed from (-1: do not check)
-- ARGV[3] author (free text)
-- ARGV[4] changes, JSON (stored in the log as given)
-- ARGV[5] strict: 0 or 1
-- ARGV[6..] pairs: "<group>:<feature>", JSON definition ("" removes the definition)
-- Returns the new version.
-- Errors: FSCONFLICT (the registry changed since it was read), FSARG (malformed call)
local registry_key, log_key, index_key = KEYS[1], KEYS[2], KEYS[3]
local namespace, author, changes = ARGV[1], ARGV[3], ARGV[4]
local expected = to_int(ARGV[2], 'expected version', -1)
if namespace == nil or #namespace == 0 then fail('FSARG', 'the namespace is empty') end
if ARGV[5] ~= '0' and ARGV[5] ~= '1' then fail('FSARG', 'strict is 0 or 1') end
if (#ARGV - 5) % 2 ~= 0 then fail('FSARG', 'definitions come as field, JSON pairs after 5 arguments') end

local current = tonumber(redis.call('HGET', registry_key, '#version')) or 0
if expected >= 0 and expected ~= current then
  fail('FSCONFLICT', 'the registry is at version ' .. current .. ', not ' .. expected .. ': it changed meanwhile')
end
local set, drop = {}, {}
for i = 6, #ARGV, 2 do
  local name, definition = ARGV[i], ARGV[i + 1]
  if string.byte(name, 1) == 35 or not string.find(name, ':', 1, true) then
    fail('FSARG', 'definition fields are "<group>:<feature>", got ' .. name)
  end
  if definition == '' then
    drop[#drop + 1] = name
  else
    local ok, decoded = pcall(cjson.decode, definition)
    if not ok or type(decoded) ~= 'table' or type(decoded['dtype']) ~= 'string' then
      fail('FSARG', name .. ': a definition is a JSON object with a dtype')
    end
    set[#set + 1] = name
    set[#set + 1] = definition
  end
end
local version = current + 1
local now = now_ms()
if #drop > 0 then call_chunked('HDEL', registry_key, drop) end
if #set > 0 then call_chunked('HSET', registry_key, set) end
redis.call('HSET', registry_key, '#version', version, '#strict', ARGV[5], '#updated_at', now, '#updated_by', author)
redis.call('XADD', log_key, 'MAXLEN', '~', 10000, '*', 'version', version, 'by', author, 'changes', changes)
redis.call('SADD', index_key, namespace)
return version
