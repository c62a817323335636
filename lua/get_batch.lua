--! function: fs_get_batch
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/now_ms.lua
--! include: lib/read_live.lua
-- Read the same features of many entities in one call; an expired feature is never returned.
-- The keys may lie in different slots on a standalone server; on a cluster the client sends one
-- call per slot, so all keys of a call share it.
--
-- KEYS[2i-1] values hash of entity i   <ns>:{<entity>}:v
-- KEYS[2i]   expiry hash of entity i   <ns>:{<entity>}:x
-- ARGV       feature names (at least one)
-- Returns one list per entity, in KEYS order, of one value per name (nil when missing or expired).
-- Errors: FSARG (no names, odd number of keys)
if #ARGV == 0 then fail('FSARG', 'fs_get_batch needs at least one feature name') end
if #KEYS % 2 ~= 0 then fail('FSARG', 'fs_get_batch takes keys in (values, expiry) pairs') end
local now = now_ms()
local out = {}
for e = 1, #KEYS, 2 do
  out[#out + 1] = read_live(KEYS[e], KEYS[e + 1], ARGV, now)
end
return out
