--! function: fs_write
--! include: lib/fail.lua
--! include: lib/reject.lua
--! include: lib/limits.lua
--! include: lib/parse_int.lua
--! include: lib/parse_keys.lua
--! include: lib/parse_ttl.lua
--! include: lib/parse_write_id.lua
--! include: lib/now_ms.lua
--! include: lib/check_feature.lua
--! include: lib/put_features.lua
--! include: lib/settle_expiry.lua
--! include: lib/seen_write.lua
--! include: lib/remember_write.lua
--! include: lib/parse_meta.lua
--! include: lib/feature_meta.lua
--! include: lib/registry.lua
--! include: lib/check_rules.lua
-- Write several features of one entity atomically: every feature is checked first, then all are
-- applied, each getting the next version of its own counter. A write id already applied to this
-- entity within the dedup window is not applied again (a retried command is harmless).
-- Features of an entity type with registered definitions (<ns>:<type>:{<id>}) are checked against
-- them (lib/registry.lua, lib/check_rules.lua); in a strict namespace, unregistered ones are refused.
--
-- Parse, then apply: every key and argument is checked before the first write (Redis does not
-- roll a function back), so a refused call changes nothing. Bounds: lib/limits.lua.
--
-- KEYS[1] values hash   <ns>:{<entity>}:v   feature -> encoded value
-- KEYS[2] expiry hash   <ns>:{<entity>}:x   feature -> expiry, integer ms since the epoch
-- KEYS[3] history hash  <ns>:{<entity>}:h   feature -> version counter; feature#N -> record N
-- KEYS[4] write ids     <ns>:{<entity>}:w   sorted set: write id, scored by apply time (ms)
-- ARGV[1] write id      1-256 bytes, unique per logical write
-- ARGV[2] max_versions  integer 0-10,000; 0 keeps no history records (versions still count)
-- ARGV[3] dedup window  integer ms 0-604,800,000 (7 days); 0 turns write-id checks off
-- ARGV[4] max bytes     integer 1-536,870,912, largest accepted encoded value
-- ARGV[5] meta          msgpack map of lineage (source, producer, inputs, ...), stored verbatim;
--                       an empty string stands for an empty map. An entry "features" (name -> map)
--                       holds lineage of single features, merged into theirs only. String keys,
--                       at most 1 MiB, nested at most 4 deep
-- ARGV[6..] triples     name, encoded value, ttl: ms 1 to 3,153,600,000,000 (100 years) or -1
--                       (never expires), or "d" + that for the caller's default, which the
--                       feature's registered TTL replaces; at most 10,000 triples
-- Returns {1, version of each feature in ARGV order} or {0} when the write id was already applied.
-- Errors: FSARG (malformed call: keys, counts, bounds, meta), FSCORRUPT feature=<name> rule=counter
--         (a version counter written around the library), FSVALIDATION feature=<name> rule=name|encoding|size|finite|ttl|
--         duplicate|unregistered, or a registered rule: nullable|dtype|dim|min|max|allowed|max_length|items
local k = parse_keys(KEYS, 4, true)
local write_id = parse_write_id(ARGV[1])
local max_versions = parse_int(ARGV[2], 'max_versions', 0, LIMITS.max_versions)
local window_ms = parse_int(ARGV[3], 'dedup window', 0, LIMITS.window_ms)
local max_bytes = parse_int(ARGV[4], 'max bytes', 1, LIMITS.value_bytes)
if #ARGV < 8 or (#ARGV - 5) % 3 ~= 0 then
  fail('FSARG', 'features come as name, value, ttl triples after 5 arguments')
end
if (#ARGV - 5) / 3 > LIMITS.names then fail('FSARG', 'at most ' .. LIMITS.names .. ' features in one write') end
local meta_map, meta = parse_meta(ARGV[5])
local rules, strict = entity_rules(k[1])

local seen, names, values, ttls = {}, {}, {}, {}
local ttl_ms, ttl_default = {}, {}  -- TTL text -> parsed: a call's features mostly share one
for i = 6, #ARGV, 3 do
  local name, value, ttl_text = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  check_feature(name, value, max_bytes)
  local rule = rules and rules[name]
  local ttl, default = ttl_ms[ttl_text], ttl_default[ttl_text]
  if ttl == nil then
    ttl, default = parse_ttl(name, ttl_text)
    ttl_ms[ttl_text], ttl_default[ttl_text] = ttl, default
  end
  if default and rule and rule.ttl then ttl = rule.ttl end
  value = check_rules(name, value, rule, strict)
  if seen[name] then reject(name, 'duplicate', 'the feature appears twice in one write') end
  seen[name] = true
  names[#names + 1] = name
  values[#values + 1] = value
  ttls[#ttls + 1] = ttl
end

-- Everything is checked: from here on, apply.
local now = now_ms()
if seen_write(k[4], write_id, window_ms) then return {0} end
local expires = {}
for i = 1, #ttls do expires[i] = ttls[i] > 0 and now + ttls[i] or -1 end
local versions = put_features(k, names, values, expires, now, max_versions, write_id,
  feature_meta(meta_map, meta, names))
remember_write(k[4], write_id, now, window_ms)
settle_expiry(k, now, expires)
table.insert(versions, 1, 1)
return versions
