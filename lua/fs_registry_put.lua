--! function: fs_registry_put
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/parse_int.lua
--! include: lib/valid_utf8.lua
--! include: lib/check_definition.lua
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
-- Parse, then apply: keys, arguments and every definition are checked before the first write.
--
-- ARGV[1] namespace   (the keys must be the three above for it)
-- ARGV[2] expected version: the #version the change was computed from (-1: do not check)
-- ARGV[3] author (free text, UTF-8, at most 256 bytes)
-- ARGV[4] changes, JSON (stored in the log as given; at most 1 MiB)
-- ARGV[5] strict: 0 or 1
-- ARGV[6..] pairs: "<group>:<feature>", JSON definition ("" removes the definition), at most
--           10,000; each definition as fsredis/schema.py FeatureDefinition takes it
-- Returns the new version.
-- Errors: FSCONFLICT (the registry changed since it was read), FSARG (malformed call),
--         FSSCHEMA (a definition FeatureDefinition would refuse)
local registry_key, log_key, index_key = KEYS[1], KEYS[2], KEYS[3]
local namespace, author, changes = ARGV[1], ARGV[3], ARGV[4]
if #ARGV < 5 or (#ARGV - 5) % 2 ~= 0 then fail('FSARG', 'definitions come as field, JSON pairs after 5 arguments') end
if (#ARGV - 5) / 2 > LIMITS.names then fail('FSARG', 'at most ' .. LIMITS.names .. ' definitions in one change') end
if #namespace == 0 or #namespace > 256 or not string.find(namespace, '^[%w_.%-][%w_.%-:]*$')
    or string.find(namespace, '::', 1, true) or string.byte(namespace, -1) == 58 then
  fail('FSARG', 'the namespace is letters, digits, _ . - in parts joined by ":"')
end
if #KEYS ~= 3 or registry_key ~= namespace .. ':{registry}' or log_key ~= namespace .. ':{registry}:log'
    or index_key ~= 'fsredis:{registry}:namespaces' then
  fail('FSARG', 'the keys must be ' .. namespace .. ':{registry}, ' .. namespace .. ':{registry}:log and fsredis:{registry}:namespaces')
end
for i, kind in ipairs({'hash', 'stream', 'set'}) do
  local found = redis.call('TYPE', KEYS[i])['ok']
  if found ~= 'none' and found ~= kind then fail('FSARG', 'key ' .. KEYS[i] .. ' holds a ' .. found .. ', not a ' .. kind) end
end
local expected = parse_int(ARGV[2], 'expected version', -1, LIMITS.version)
if #author > 256 or not valid_utf8(author, 1, #author) then fail('FSARG', 'the author is at most 256 bytes of UTF-8') end
if #changes > LIMITS.meta_bytes or not valid_utf8(changes, 1, #changes) or not pcall(cjson.decode, changes) then
  fail('FSARG', 'changes is JSON of at most ' .. LIMITS.meta_bytes .. ' bytes')
end
if ARGV[5] ~= '0' and ARGV[5] ~= '1' then fail('FSARG', 'strict is 0 or 1') end
local set, drop = {}, {}
for i = 6, #ARGV, 2 do
  local name, definition = ARGV[i], ARGV[i + 1]
  if definition == '' then
    if string.byte(name, 1) == 35 or not string.find(name, ':', 1, true) then
      fail('FSARG', 'definition fields are "<group>:<feature>", got ' .. string.sub(name, 1, 200))
    end
    drop[#drop + 1] = name
  else
    check_definition(name, definition)
    set[#set + 1] = name
    set[#set + 1] = definition
  end
end
local current = tonumber(redis.call('HGET', registry_key, '#version')) or 0
if expected >= 0 and expected ~= current then
  fail('FSCONFLICT', 'the registry is at version ' .. current .. ', not ' .. expected .. ': it changed meanwhile')
end

-- Everything is checked: from here on, apply.
local version = current + 1
local now = now_ms()
if #drop > 0 then call_chunked('HDEL', registry_key, drop) end
if #set > 0 then call_chunked('HSET', registry_key, set) end
redis.call('HSET', registry_key, '#version', version, '#strict', ARGV[5], '#updated_at', now, '#updated_by', author)
redis.call('XADD', log_key, 'MAXLEN', '~', 10000, '*', 'version', version, 'by', author, 'changes', changes)
redis.call('SADD', index_key, namespace)
return version
