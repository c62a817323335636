--! function: fs_rollback
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/parse_int.lua
--! include: lib/parse_keys.lua
--! include: lib/reject.lua
--! include: lib/now_ms.lua
--! include: lib/parse_ttl.lua
--! include: lib/put_features.lua
--! include: lib/settle_expiry.lua
--! include: lib/seen_write.lua
--! include: lib/remember_write.lua
--! include: lib/parse_meta.lua
--! include: lib/stored_counter.lua
--! include: lib/parse_write_id.lua
--! include: lib/check_name.lua
--! include: lib/registry.lua
--! include: lib/check_feature.lua
--! include: lib/check_rules.lua
-- Roll one feature back to an earlier version: that version's value is written again as a new
-- version (history is append-only), with meta {rolled_back_from = N} merged into the given meta.
-- The new value's TTL is the feature's registered TTL, else the default for its kind as the client
-- passes it. The value must pass the feature's current registered rules, as any write (fs_write).
--
-- Parse, then apply, as fs_write: the stored record is read and checked before the first write.
--
-- KEYS[1..4]  values, expiry, history, write-id keys of the entity (as fs_write)
-- ARGV[1]     feature name
-- ARGV[2]     version to restore, integer 1 to 2^53-1
-- ARGV[3]     write id;  ARGV[4] max_versions;  ARGV[5] dedup window ms  (as fs_write)
-- ARGV[6]     ttl ms for a scalar value: 1 to 3,153,600,000,000, or -1 for none
-- ARGV[7]     ttl ms for an embedding value, as ARGV[6]
-- ARGV[8]     meta, msgpack map (an empty string: an empty map; as fs_write)
-- Returns the new version, or {0, current version} when the write id was already applied.
-- Errors: FSARG (malformed call); FSCORRUPT feature=<name> rule=record (the stored record is unreadable); FSNOTFOUND feature=<name> rule=version (no such version) | rule=trimmed (no longer kept);
--         FSVALIDATION feature=<name> rule=<rule> when the old value breaks today's definition
local k = parse_keys(KEYS, 4, true)
if #ARGV ~= 8 then fail('FSARG', 'fs_rollback takes 8 arguments, got ' .. #ARGV) end
local name = ARGV[1]
check_name(name)
local target = parse_int(ARGV[2], 'version', 1, LIMITS.version)
local write_id = parse_write_id(ARGV[3])
local max_versions = parse_int(ARGV[4], 'max_versions', 0, LIMITS.max_versions)
local window_ms = parse_int(ARGV[5], 'dedup window', 0, LIMITS.window_ms)
local ttl_scalar = parse_ttl(name, ARGV[6])
local ttl_embedding = parse_ttl(name, ARGV[7])
local meta = parse_meta(ARGV[8])

local current = stored_counter(name, redis.call('HGET', k[3], name))
if seen_write(k[4], write_id, window_ms) then return {0, current} end
if target > current then
  fail('FSNOTFOUND', 'feature=' .. name .. ' rule=version version ' .. target .. ' does not exist (current is ' .. current .. ')')
end
local record = redis.call('HGET', k[3], name .. '#' .. target)
if not record then
  fail('FSNOTFOUND', 'feature=' .. name .. ' rule=trimmed version ' .. target .. ' is no longer kept')
end
local head = #record >= 32 and struct.unpack('<I4', record)
if not head or head < 28 or 4 + head >= #record then
  fail('FSCORRUPT', 'feature=' .. name .. ' rule=record version ' .. target .. ' is not a readable history record')
end
local value = string.sub(record, 5 + head)
local rules, strict = entity_rules(k[1])
local rule = rules and rules[name]
local ttl = ttl_scalar
if rule and rule.ttl then
  ttl = rule.ttl
elseif string.sub(value, 1, 2) == '\193e' then
  ttl = ttl_embedding
end
check_feature(name, value, LIMITS.value_bytes)
value = check_rules(name, value, rule, strict)

-- Everything is checked: from here on, apply.
local now = now_ms()
meta['rolled_back_from'] = target
local expires_at = -1
if ttl > 0 then expires_at = now + ttl end
local version = put_features(k, {name}, {value}, {expires_at}, now, max_versions, write_id, cmsgpack.pack(meta))[1]
remember_write(k[4], write_id, now, window_ms)
settle_expiry(k, now, {expires_at})
return version
