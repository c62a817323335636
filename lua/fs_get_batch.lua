--! function: fs_get_batch
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/parse_names.lua
--! include: lib/check_entity_hashes.lua
--! include: lib/hmget_many.lua
--! include: lib/now_ms.lua
-- Read the same features of many entities in one call, as stored: each field with its 24-byte
-- head (expiry, event time, version, record; docs/storage_format.md), and the server time, so
-- the client drops the expired ones exactly, without spending the server's time on it.
-- The keys may lie in different slots on a standalone server; on a cluster the client sends one
-- call per slot, so all keys of a call share it.
--
-- KEYS[i]  entity hash of entity i   <ns>:[<type>:]{<id>}:e; at most 10,000
-- ARGV     feature names (at least one; no '#', at most 10,000)
-- Returns {server time ms, one list per entity in KEYS order of one field per name (nil: missing)}.
--         A field whose expiry (int48 LE, its first 6 bytes; 0: none) is at or before the server
--         time has expired and must not be used.
-- Errors: FSARG (no names, keys that are not entity hashes, malformed names, too many)
if #ARGV == 0 then fail('FSARG', 'fs_get_batch needs at least one feature name') end
if #KEYS > LIMITS.entities then fail('FSARG', 'fs_get_batch takes at most ' .. LIMITS.entities .. ' entities') end
parse_names(ARGV, 1, 'fs_get_batch')
check_entity_hashes(KEYS)
local out = {now_ms()}
for e = 1, #KEYS do
  out[e + 1] = hmget_many(KEYS[e], ARGV)
end
return out
