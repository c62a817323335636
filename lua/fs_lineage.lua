--! function: fs_lineage
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/parse_int.lua
--! include: lib/parse_entity_key.lua
--! include: lib/parse_names.lua
--! include: lib/read_call.lua
--! include: lib/read_head.lua
--! include: lib/read_index.lua
--! include: lib/record_at.lua
--! include: lib/resolve_value.lua
--! include: lib/now_ms.lua
-- History of one feature of one entity, newest version first.
--
-- KEYS[1] entity hash   <ns>:[<type>:]{<id>}:e
-- ARGV[1] feature name
-- ARGV[2] limit         integer 1-10,000, most versions returned
-- Returns {highest version (0: none), current version (0: none), server now (ms), then one list per
--          version: {version, event time ms, expiry ms (0: none), write time ms (-1: unknown),
--          write id, meta (msgpack map, "" when unknown), value}}. A version's write time, id and
--          meta are those of the write that made it (with max_versions 0 nothing but the
--          current value is kept, without them).
-- Errors: FSARG (not an entity key or not a hash, a malformed name or limit), FSCORRUPT
--         feature=<name> rule=head|index|record (a stored field written around the library)
if #KEYS ~= 1 then fail('FSARG', 'fs_lineage takes one key, the entity hash') end
local key = parse_entity_key(KEYS[1], false)
if #ARGV ~= 2 then fail('FSARG', 'fs_lineage takes a feature name and a limit') end
parse_names(ARGV, 1, 'fs_lineage')
local name = ARGV[1]
local limit = parse_int(ARGV[2], 'limit', 1, LIMITS.max_versions)
local got = read_call('HMGET', key, name, name .. '#')
local cur = read_head(name, got[1]) or false
local counter, entries = read_index(name, got[2])
local versions = {}
for _, entry in ipairs(entries) do versions[#versions + 1] = {entry[1], entry[2], entry[3], entry[4]} end
if cur then versions[#versions + 1] = {cur.v, cur.e, cur.x, cur.s} end
table.sort(versions, function(a, b) return a[1] > b[1] end)
local out = {math.max(counter, cur and cur.v or 0), cur and cur.v or 0, now_ms()}
local records = {}
for i = 1, math.min(limit, #versions) do
  local v = versions[i]
  local seq = v[4]
  local rec = nil
  if seq > 0 then
    rec = record_at(key, seq, records)
    if not rec then fail('FSCORRUPT', 'feature=' .. name .. string.format(' rule=record the record of version %d is missing or unreadable', v[1])) end
  end
  out[#out + 1] = {v[1], v[2], v[3], rec and rec.time or -1, rec and rec.write_id or '', rec and rec.meta or '',
    resolve_value(key, name, cur, entries, v[1], records)}
end
return out
