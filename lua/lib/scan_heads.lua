--! include: lib/hmget_many.lua
--! include: lib/read_head.lua
-- scan_heads(key, skip) -> {name, head} of every current value of the entity (fields without '#')
-- whose name is not a key of `skip`, heads taken apart as read_head does ({x, e, v, s, raw});
-- fields that cannot be a current value (too short, a version or record number out of range)
-- are left out. Reads every field name (HKEYS): for the exact passes over an entity (an expired
-- feature to move to history, a deadline to recompute).
local function scan_heads(key, skip)
  local names = {}
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if not string.find(field, '#', 1, true) and not skip[field] then names[#names + 1] = field end
  end
  local raws = hmget_many(key, names)
  local out = {}
  for i = 1, #names do
    local ok, head = pcall(read_head, names[i], raws[i])
    if ok and head then out[#out + 1] = {names[i], head} end
  end
  return out
end
