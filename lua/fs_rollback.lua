--! function: fs_rollback
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/now_ms.lua
--! include: lib/parse_int.lua
--! include: lib/parse_entity_key.lua
--! include: lib/parse_log_key.lua
--! include: lib/parse_options.lua
--! include: lib/parse_meta.lua
--! include: lib/check_name.lua
--! include: lib/check_feature.lua
--! include: lib/parse_features.lua
--! include: lib/read_entity.lua
--! include: lib/read_index.lua
--! include: lib/resolve_value.lua
--! include: lib/seen_write.lua
--! include: lib/write_digest.lua
--! include: lib/apply_write.lua
-- Roll one feature back to an earlier version: that version's value is written again as a new
-- version (history is append-only), with meta {rolled_back_from = N} merged into the given meta,
-- and becomes the current value (its event time is the server time, or the current value's if
-- that is later). The value must pass the feature's registered rules, as any write (fs_write);
-- its TTL is chosen as fs_write chooses it (options ttl, registered TTL, default by kind).
--
-- Parse, then apply, as fs_write: the old value is found and checked before the first write.
--
-- KEYS[1]  entity hash  <ns>:[<type>:]{<id>}:e
-- KEYS[2]  optional: the change log of the entity's slot, as fs_write
-- ARGV[1]  options, as fs_write (id required; event_time is not taken)
-- ARGV[2]  meta, as fs_write
-- ARGV[3]  feature name
-- ARGV[4]  version to restore, integer 1 to 2^47-1
-- Returns the new version, or {0, current version} when the write id was already applied.
-- Errors: FSARG (malformed call); FSCORRUPT feature=<name> rule=head|index|record (a stored field
--         is unreadable); FSNOTFOUND feature=<name> rule=version (no such version) | rule=trimmed
--         (no longer kept); FSVALIDATION feature=<name> rule=<rule> when the old value breaks
--         today's definition
if #KEYS ~= 1 and #KEYS ~= 2 then fail('FSARG', 'fs_rollback takes the entity hash and optionally its change log') end
local key = parse_entity_key(KEYS[1], true)
local log = KEYS[2] and parse_log_key(key, KEYS[2])
if #ARGV ~= 4 then fail('FSARG', 'fs_rollback takes 4 arguments, got ' .. #ARGV) end
local o = parse_options(ARGV[1], true)
if o.event_time ~= nil then fail('FSARG', 'fs_rollback takes no event_time: the restored value becomes current') end
local meta = parse_meta(ARGV[2])
local name = ARGV[3]
check_name(name)
local target = parse_int(ARGV[4], 'version', 1, LIMITS.version)
local now = now_ms()
local st = read_entity(key, {name}, now)
local cur = st.cur[1]
local counter, entries = read_index(name, st.index[1] or nil)
local top = math.max(counter, cur and cur.v or 0)
o.digest = write_digest(o.id)
if o.dedup_ms > 0 and seen_write(st.log, o.digest) then return {0, cur and cur.v or 0} end
if target > top then
  fail('FSNOTFOUND', 'feature=' .. name .. string.format(' rule=version version %d does not exist (the latest is %d)', target, top))
end
local value = resolve_value(key, name, cur, entries, target, {})
if not value then
  fail('FSNOTFOUND', 'feature=' .. name .. string.format(' rule=trimmed version %d is no longer kept', target))
end
if not pcall(check_feature, name, value, LIMITS.value_bytes) then
  fail('FSCORRUPT', 'feature=' .. name .. string.format(' rule=record the value of version %d is not a stored value', target))
end
local names, values, ttls = parse_features(key, {name, value}, 1, 1, o)
meta['rolled_back_from'] = target

-- Everything is checked: from here on, apply.
o.log = log
o.event_time = math.max(now, cur and cur.e or now)
return apply_write(key, st, names, values, ttls, o, cmsgpack.pack(meta), now)[1]
