--! function: fs_get
--! flags: no-writes
--! include: lib/parse_keys.lua
--! include: lib/parse_names.lua
--! include: lib/read_call.lua
--! include: lib/now_ms.lua
--! include: lib/read_live.lua
-- Read features of one entity; an expired feature is never returned.
--
-- KEYS[1] values hash   <ns>:{<entity>}:v
-- KEYS[2] expiry hash   <ns>:{<entity>}:x
-- ARGV    feature names (no '#', at most 10,000); none means every live feature
-- Returns, with names: one value per name in ARGV order (nil when missing or expired);
--         without names: a flat list name1, value1, name2, value2, ... of the live features.
-- Errors: FSARG (keys not of one entity, or not fsredis hashes; a malformed name)
parse_keys(KEYS, 2, false)
parse_names(ARGV, 1, 'fs_get')
local values_key, expiry_key = KEYS[1], KEYS[2]
local now = now_ms()
if #ARGV > 0 then return read_live(values_key, expiry_key, ARGV, now) end
local flat = read_call('HGETALL', values_key)
local expiry = read_call('HGETALL', expiry_key)
local dead = {}
for i = 1, #expiry, 2 do
  if (tonumber(expiry[i + 1]) or 0) <= now then dead[expiry[i]] = true end
end
local out = {}
for i = 1, #flat, 2 do
  local name = flat[i]
  if not dead[name] and string.byte(name, 1) ~= 35 then  -- 35 is '#': "#min" is not a feature
    out[#out + 1] = name
    out[#out + 1] = flat[i + 1]
  end
end
return out
