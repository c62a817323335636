--! function: fs_lineage
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/parse_int.lua
--! include: lib/parse_keys.lua
--! include: lib/parse_names.lua
--! include: lib/read_call.lua
--! include: lib/stored_counter.lua
--! include: lib/now_ms.lua
--! include: lib/hmget_many.lua
-- History of one feature of one entity, newest first.
--
-- KEYS[1] values hash   <ns>:{<entity>}:v
-- KEYS[2] expiry hash   <ns>:{<entity>}:x
-- KEYS[3] history hash  <ns>:{<entity>}:h
-- ARGV[1] feature name
-- ARGV[2] limit         integer 1-10,000, most records returned
-- Returns {current version (0: none), server now (ms), the current value's expiry (ms) or nil,
--          record N, record N-1, ...}: records as put_features writes them; trimmed ones are absent.
-- Errors: FSARG (keys not of one entity or not fsredis hashes, a malformed name or limit),
--         FSCORRUPT feature=<name> rule=counter (a version counter written around the library)
parse_keys(KEYS, 3, false)
if #ARGV ~= 2 then fail('FSARG', 'fs_lineage takes a feature name and a limit') end
parse_names(ARGV, 1, 'fs_lineage')
local expiry_key, history_key = KEYS[2], KEYS[3]
local name = ARGV[1]
local limit = parse_int(ARGV[2], 'limit', 1, LIMITS.max_versions)
local current = stored_counter(name, read_call('HGET', history_key, name))
local out = {current, now_ms(), read_call('HGET', expiry_key, name)}
local fields = {}
for v = current, math.max(1, current - limit + 1), -1 do fields[#fields + 1] = name .. '#' .. v end  -- <= limit
local records = hmget_many(history_key, fields)
for i = 1, #records do
  if records[i] then out[#out + 1] = records[i] end
end
return out
