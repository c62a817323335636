--! function: fs_get
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/parse_entity_key.lua
--! include: lib/parse_names.lua
--! include: lib/read_call.lua
--! include: lib/hmget_many.lua
--! include: lib/now_ms.lua
-- Read features of one entity as values (without their heads); an expired feature is never
-- returned. For operators and the "function" read path; the client's default single read is a
-- plain HMGET of the same fields, checked against the server clock on the client.
--
-- KEYS[1] entity hash   <ns>:[<type>:]{<id>}:e
-- ARGV    feature names (no '#', at most 10,000); none means every live feature
-- Returns, with names: one value per name in ARGV order (nil when missing or expired);
--         without names: a flat list name1, value1, name2, value2, ... of the live features.
-- Errors: FSARG (not an entity key or not a hash; a malformed name), FSCORRUPT feature=<name>
--         rule=head (a field too short to be an fsredis value)
if #KEYS ~= 1 then fail('FSARG', 'fs_get takes one key, the entity hash') end
local key = parse_entity_key(KEYS[1], false)
parse_names(ARGV, 1, 'fs_get')
local now = now_ms()
local function live(name, raw)
  if #raw < 25 then fail('FSCORRUPT', 'feature=' .. name .. ' rule=head the stored value is not an fsredis value') end
  local x = struct.unpack('<i6', raw)
  if x > 0 and x <= now then return false end
  return string.sub(raw, 25)
end
if #ARGV > 0 then
  local raws = hmget_many(key, ARGV)
  for i = 1, #ARGV do
    if raws[i] then raws[i] = live(ARGV[i], raws[i]) end
  end
  return raws
end
local flat = read_call('HGETALL', key)
local out = {}
for i = 1, #flat, 2 do
  local name = flat[i]
  if not string.find(name, '#', 1, true) then  -- '#' marks the entity's bookkeeping fields
    local value = live(name, flat[i + 1])
    if value then
      out[#out + 1] = name
      out[#out + 1] = value
    end
  end
end
return out
