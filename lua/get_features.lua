--! function: fs_get
--! flags: no-writes
--! include: lib/now_ms.lua
--! include: lib/hmget_many.lua
-- Read features of one entity; an expired feature is never returned.
--
-- KEYS[1] values hash   <ns>:{<entity>}:v
-- KEYS[2] expiry hash   <ns>:{<entity>}:x
-- ARGV    feature names; none means every live feature
-- Returns, with names: one value per name in ARGV order (nil when missing or expired);
--         without names: a flat list name1, value1, name2, value2, ... of the live features.
local values_key, expiry_key = KEYS[1], KEYS[2]
local now = now_ms()
if #ARGV == 0 then
  local flat = redis.call('HGETALL', values_key)
  local expiry = redis.call('HGETALL', expiry_key)
  local dead = {}
  for i = 1, #expiry, 2 do
    if tonumber(expiry[i + 1]) <= now then dead[expiry[i]] = true end
  end
  local out = {}
  for i = 1, #flat, 2 do
    if not dead[flat[i]] then
      out[#out + 1] = flat[i]
      out[#out + 1] = flat[i + 1]
    end
  end
  return out
end
local values = hmget_many(values_key, ARGV, 1)
local expiry = hmget_many(expiry_key, ARGV, 1)
for i = 1, #values do
  if expiry[i] and tonumber(expiry[i]) <= now then values[i] = false end
end
return values
