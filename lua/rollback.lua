--! function: fs_rollback
--! include: lib/fail.lua
--! include: lib/to_int.lua
--! include: lib/now_ms.lua
--! include: lib/put_features.lua
--! include: lib/settle_expiry.lua
--! include: lib/seen_write.lua
--! include: lib/remember_write.lua
--! include: lib/read_meta.lua
--! include: lib/registry.lua
--! include: lib/check_feature.lua
--! include: lib/check_rules.lua
-- Roll one feature back to an earlier version: that version's value is written again as a new
-- version (history is append-only), with meta {rolled_back_from = N} merged into the given meta.
-- The new value's TTL is the feature's registered TTL, else the default for its kind as the client
-- passes it. The value must pass the feature's current registered rules, as any write (fs_write).
--
-- KEYS[1..4]  values, expiry, history, write-id keys of the entity (as fs_write)
-- ARGV[1]     feature name
-- ARGV[2]     version to restore, integer >= 1
-- ARGV[3]     write id;  ARGV[4] max_versions;  ARGV[5] dedup window ms  (as fs_write)
-- ARGV[6]     ttl ms for a scalar value, -1 for none
-- ARGV[7]     ttl ms for an embedding value, -1 for none
-- ARGV[8]     meta, msgpack map (an empty string: an empty map)
-- Returns the new version, or {0, current version} when the write id was already applied.
-- Errors: FSARG; FSNOTFOUND feature=<name> rule=version (no such version) | rule=trimmed (no longer kept);
--         FSVALIDATION feature=<name> rule=<rule> when the old value breaks today's definition
local k = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
local name = ARGV[1]
if name == nil or #name == 0 then fail('FSARG', 'fs_rollback needs a feature name') end
local target = to_int(ARGV[2], 'version', 1)
local write_id = ARGV[3]
if write_id == nil or #write_id == 0 then fail('FSARG', 'the write id is empty') end
local max_versions = to_int(ARGV[4], 'max_versions', 0)
local window_ms = to_int(ARGV[5], 'dedup window', 0)
local ttl_scalar = to_int(ARGV[6], 'scalar ttl', -1)
local ttl_embedding = to_int(ARGV[7], 'embedding ttl', -1)
local meta = read_meta(ARGV[8])

local now = now_ms()
local current = tonumber(redis.call('HGET', k[3], name)) or 0
if seen_write(k[4], write_id, window_ms) then return {0, current} end
if target > current then
  fail('FSNOTFOUND', 'feature=' .. name .. ' rule=version version ' .. target .. ' does not exist (current is ' .. current .. ')')
end
local record = redis.call('HGET', k[3], name .. '#' .. target)
if not record then
  fail('FSNOTFOUND', 'feature=' .. name .. ' rule=trimmed version ' .. target .. ' is no longer kept')
end
local value = string.sub(record, 5 + struct.unpack('<I4', record))

local rules, strict = entity_rules(k[1])
local rule = rules and rules[name]
local ttl = ttl_scalar
if rule and rule.ttl then
  ttl = rule.ttl
elseif string.sub(value, 1, 2) == '\193e' then
  ttl = ttl_embedding
end
value = check_rules(name, value, check_feature(name, value, ttl, #value), rule, strict)
meta['rolled_back_from'] = target
local expires_at = -1
if ttl > 0 then expires_at = now + ttl end
local version = put_features(k, {name}, {value}, {expires_at}, now, max_versions, write_id, cmsgpack.pack(meta))[1]
remember_write(k[4], write_id, now, window_ms)
settle_expiry(k, now, {expires_at})
return version
