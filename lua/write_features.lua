--! function: fs_write
--! include: lib/fail.lua
--! include: lib/reject.lua
--! include: lib/to_int.lua
--! include: lib/now_ms.lua
--! include: lib/check_feature.lua
--! include: lib/put_features.lua
--! include: lib/settle_expiry.lua
--! include: lib/seen_write.lua
--! include: lib/remember_write.lua
--! include: lib/read_meta.lua
--! include: lib/feature_meta.lua
--! include: lib/registry.lua
--! include: lib/check_rules.lua
-- Write several features of one entity atomically: every feature is checked first, then all are
-- applied, each getting the next version of its own counter. A write id already applied to this
-- entity within the dedup window is not applied again (a retried command is harmless).
-- Features of an entity type with registered definitions (<ns>:<type>:{<id>}) are checked against
-- them (lib/registry.lua, lib/check_rules.lua); in a strict namespace, unregistered ones are refused.
--
-- KEYS[1] values hash   <ns>:{<entity>}:v   feature -> encoded value
-- KEYS[2] expiry hash   <ns>:{<entity>}:x   feature -> expiry, integer ms since the epoch
-- KEYS[3] history hash  <ns>:{<entity>}:h   feature -> version counter; feature#N -> record N
-- KEYS[4] write ids     <ns>:{<entity>}:w   sorted set: write id, scored by apply time (ms)
-- ARGV[1] write id      non-empty string, unique per logical write
-- ARGV[2] max_versions  integer >= 0; 0 keeps no history records (versions still count)
-- ARGV[3] dedup window  integer ms >= 0; 0 turns write-id checks off
-- ARGV[4] max bytes     integer, largest accepted encoded value
-- ARGV[5] meta          msgpack map of lineage (source, producer, inputs, ...), stored verbatim;
--                       an empty string stands for an empty map. An entry "features" (name -> map)
--                       holds lineage of single features, merged into theirs only
-- ARGV[6..] triples     name, encoded value, ttl: ms (-1: never expires), or "d" + ms for the
--                       caller's default, which the feature's registered TTL replaces
-- Returns {1, version of each feature in ARGV order} or {0} when the write id was already applied.
-- Errors: FSARG (malformed call), FSVALIDATION feature=<name> rule=name|encoding|size|finite|ttl|
--         duplicate|unregistered, or a registered rule: nullable|dtype|dim|min|max|allowed|max_length|items
local k = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
local write_id = ARGV[1]
local max_versions = to_int(ARGV[2], 'max_versions', 0)
local window_ms = to_int(ARGV[3], 'dedup window', 0)
local max_bytes = to_int(ARGV[4], 'max bytes', 1)
if write_id == nil or #write_id == 0 then fail('FSARG', 'the write id is empty') end
if #ARGV < 8 or (#ARGV - 5) % 3 ~= 0 then
  fail('FSARG', 'features come as name, value, ttl triples after 5 arguments')
end
local meta_map, meta = read_meta(ARGV[5])
local rules, strict = entity_rules(k[1])

local now = now_ms()
if seen_write(k[4], write_id, window_ms) then return {0} end

local seen, names, values, expires = {}, {}, {}, {}
for i = 6, #ARGV, 3 do
  local name, value, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local rule = rules and rules[name]
  if string.byte(ttl, 1) == 100 then  -- 'd'
    ttl = rule and rule.ttl or tonumber(string.sub(ttl, 2)) or 0
  else
    ttl = tonumber(ttl) or 0
  end
  value = check_rules(name, value, check_feature(name, value, ttl, max_bytes), rule, strict)
  if seen[name] then reject(name, 'duplicate', 'the feature appears twice in one write') end
  seen[name] = true
  names[#names + 1] = name
  values[#values + 1] = value
  expires[#expires + 1] = ttl > 0 and now + ttl or -1
end

local versions = put_features(k, names, values, expires, now, max_versions, write_id,
  feature_meta(meta_map, meta, names))
remember_write(k[4], write_id, now, window_ms)
settle_expiry(k, now, expires)
table.insert(versions, 1, 1)
return versions
