--! function: fs_get_batch
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/parse_names.lua
--! include: lib/now_ms.lua
--! include: lib/read_live.lua
-- Read the same features of many entities in one call; an expired feature is never returned.
-- The keys may lie in different slots on a standalone server; on a cluster the client sends one
-- call per slot, so all keys of a call share it.
--
-- KEYS[2i-1] values hash of entity i   <ns>:{<entity>}:v
-- KEYS[2i]   expiry hash of entity i   <ns>:{<entity>}:x
-- ARGV       feature names (at least one; no '#', at most 10,000); at most 10,000 entities
-- Returns one list per entity, in KEYS order, of one value per name (nil when missing or expired).
-- Errors: FSARG (no names, keys not in (values, expiry) pairs of one entity each, keys that are
--         not fsredis hashes, malformed names, too many)
if #ARGV == 0 then fail('FSARG', 'fs_get_batch needs at least one feature name') end
if #KEYS % 2 ~= 0 then fail('FSARG', 'fs_get_batch takes keys in (values, expiry) pairs') end
if #KEYS > 2 * LIMITS.entities then fail('FSARG', 'fs_get_batch takes at most ' .. LIMITS.entities .. ' entities') end
parse_names(ARGV, 1, 'fs_get_batch')
local sub = string.sub
for e = 1, #KEYS, 2 do
  local v, x = KEYS[e], KEYS[e + 1]
  if sub(v, -3) ~= '}:v' or sub(x, -3) ~= '}:x' or sub(v, 1, -2) ~= sub(x, 1, -2) then
    fail('FSARG', 'keys ' .. e .. ' and ' .. (e + 1) .. ' are not the values and expiry keys of one entity')
  end
end
local now = now_ms()
local out = {}
for e = 1, #KEYS, 2 do
  out[#out + 1] = read_live(KEYS[e], KEYS[e + 1], ARGV, now)
end
return out
