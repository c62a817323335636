--! function: fs_write
--! include: lib/fail.lua
--! include: lib/parse_entity_key.lua
--! include: lib/parse_log_key.lua
--! include: lib/parse_options.lua
--! include: lib/parse_meta.lua
--! include: lib/parse_features.lua
--! include: lib/write_one.lua
-- Write several features of one entity atomically: every feature is checked first (also against
-- the registered rules of the entity's type, lib/registry.lua), then all are applied, each getting
-- the next version of its own counter (lib/apply_write.lua). A write id already applied to this
-- entity within the dedup window is not applied again (a retried command is harmless).
--
-- Parse, then apply: every key, argument and stored field the write reads is checked before the
-- first write (Redis does not roll a function back), so a refused call changes nothing.
--
-- KEYS[1]  entity hash  <ns>:[<type>:]{<id>}:e
-- KEYS[2]  optional: the change log of the entity's slot <ns>:{<tag>}:log, a stream; given, the
--          versions the write makes are appended to it (lib/append_log.lua)
-- ARGV[1]  options, a msgpack map: id (the write id, required), event_time, max_versions,
--          dedup_ms, max_bytes, ttl, scalar_ttl, embedding_ttl (lib/parse_options.lua)
-- ARGV[2]  meta, a msgpack map of lineage (source, producer, inputs, ...), stored once for the
--          write; an entry "features" (name -> map) holds lineage of single features. An empty
--          string stands for an empty map. String keys, at most 1 MiB, nested at most 4 deep
-- ARGV[3..] name, value pairs: the encoded values (docs/storage_format.md, "Values"); 1-10,000
-- Returns {1, version of each feature in ARGV order} (negative: kept as history only, an older
--         event than the current value's), or {0} when the write id was already applied.
-- Errors: FSARG (malformed key, options, meta or pairs, a key of another type), FSCORRUPT
--         feature=<name> rule=head|index|entity (a stored field written around the library),
--         FSVALIDATION feature=<name> rule=name|encoding|size|finite|ttl|duplicate|unregistered,
--         or a registered rule: definition|nullable|dtype|dim|min|max|allowed|max_length|items
if #KEYS ~= 1 and #KEYS ~= 2 then fail('FSARG', 'fs_write takes the entity hash and optionally its change log') end
local key, absent = parse_entity_key(KEYS[1], true)
local o = parse_options(ARGV[1], true)
if KEYS[2] then o.log = parse_log_key(key, KEYS[2]) end
local _, meta = parse_meta(ARGV[2])
if #ARGV < 4 or #ARGV % 2 ~= 0 then fail('FSARG', 'features come as name, value pairs after the options and meta') end
local names, values, ttls = parse_features(key, ARGV, 3, (#ARGV - 2) / 2, o)
return write_one(key, absent, o, meta, names, values, ttls)
