--! function: fs_lineage
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/to_int.lua
--! include: lib/now_ms.lua
--! include: lib/hmget_many.lua
-- History of one feature of one entity, newest first.
--
-- KEYS[1] values hash   <ns>:{<entity>}:v
-- KEYS[2] expiry hash   <ns>:{<entity>}:x
-- KEYS[3] history hash  <ns>:{<entity>}:h
-- ARGV[1] feature name
-- ARGV[2] limit         integer >= 1, most records returned
-- Returns {current version (0: none), server now (ms), the current value's expiry (ms) or nil,
--          record N, record N-1, ...}: records as put_features writes them; trimmed ones are absent.
local expiry_key, history_key = KEYS[2], KEYS[3]
local name = ARGV[1]
if name == nil then fail('FSARG', 'fs_lineage needs a feature name') end
local limit = to_int(ARGV[2], 'limit', 1)
local current = tonumber(redis.call('HGET', history_key, name)) or 0
local out = {current, now_ms(), redis.call('HGET', expiry_key, name)}
local fields = {}
for v = current, math.max(1, current - limit + 1), -1 do fields[#fields + 1] = name .. '#' .. v end
local records = hmget_many(history_key, fields)
for i = 1, #records do
  if records[i] then out[#out + 1] = records[i] end
end
return out
