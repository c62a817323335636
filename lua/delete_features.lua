--! function: fs_delete
--! include: lib/parse_keys.lua
--! include: lib/parse_names.lua
--! include: lib/drop_history.lua
--! include: lib/counter.lua
--! include: lib/now_ms.lua
--! include: lib/refresh_expiry.lua
-- Delete features of one entity — value, expiry, history and version counter — or the whole
-- entity. A deleted feature written again starts over at version 1.
--
-- Parse, then apply: keys and names are checked before the first write.
--
-- KEYS[1..4]  values, expiry, history, write-id keys of the entity (as fs_write)
-- ARGV        feature names (no '#', at most 10,000); none deletes the entity
-- Returns the number of features that existed (had a value or a history) and were deleted.
-- Errors: FSARG (malformed keys or names)
local k = parse_keys(KEYS, 4, true)
parse_names(ARGV, 1, 'fs_delete')
local now = now_ms()
local rcall = redis.call
if #ARGV == 0 then
  local names = {}
  for _, name in ipairs(rcall('HKEYS', k[1])) do
    if string.byte(name, 1) ~= 35 then names[name] = true end  -- skip "#min"
  end
  for _, field in ipairs(rcall('HKEYS', k[3])) do
    if not string.find(field, '#', 1, true) then names[field] = true end
  end
  local count = 0
  for _ in pairs(names) do count = count + 1 end
  rcall('DEL', k[1], k[2], k[3], k[4])
  return count
end
local count = 0
for i = 1, #ARGV do
  local name = ARGV[i]
  local current = counter(rcall('HGET', k[3], name)) or 0  -- not a number: nothing to drop
  local had_value = rcall('HDEL', k[1], name)
  if had_value == 1 or current > 0 then count = count + 1 end
  rcall('HDEL', k[2], name)
  rcall('HDEL', k[3], name)
  drop_history(k[3], name, current)
end
refresh_expiry(k, now)
return count
