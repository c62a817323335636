--! function: fs_get_as_of
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/parse_int.lua
--! include: lib/parse_names.lua
--! include: lib/check_entity_hashes.lua
--! include: lib/read_kept.lua
--! include: lib/record_at.lua
--! include: lib/resolve_value.lua
--! include: lib/pack_head.lua
--! include: lib/entity_or_error.lua
-- Read features of many entities as they were at a time T: per feature the version with the
-- newest event time at or before T (on a tie, the later write; docs/storage_format.md, "As-of
-- reads"), or word that T lies beyond the history the entity keeps of it.
-- A version cut from the history (max_versions) can have been the answer: the version index keeps
-- the newest event time it cut, and when that is newer than the version found (or none was found)
-- the feature is reported beyond retention rather than answered with another version.
-- The keys may lie in different slots on a standalone server; on a cluster the client sends one
-- call per slot, so all keys of a call share it. No TIME: a read-only ACL may run it.
--
-- KEYS[i]  entity hash of entity i   <ns>:[<type>:]{<id>}:e; 1 to 10,000
-- ARGV[1]  T, integer ms since the epoch (within LIMITS.time_ms of it)
-- ARGV[2..] feature names (at least one; no '#', at most 10,000)
-- Returns {T, beyond, one list per entity in KEYS order of one field per name}: a field is the
--         version found as a current value is stored (24-byte head: expiry, event time, version,
--         0; then the value; the client drops it when its expiry is at or before T), or nil when
--         the feature had no version by T. `beyond` lists, as pairs of 1-based positions
--         (entity, name), the features whose state at T the kept history cannot tell. An entity
--         whose stored fields cannot be read (written around the library) has, in place of its
--         list, the error FSCORRUPT feature=<name> rule=head|index|record.
-- Errors: FSARG (no names, keys that are not entity hashes or not hashes, malformed T, names or
--         counts)
if #KEYS == 0 or #KEYS > LIMITS.entities then fail('FSARG', 'fs_get_as_of takes 1 to ' .. LIMITS.entities .. ' entities') end
if #ARGV < 2 then fail('FSARG', 'fs_get_as_of takes a time and at least one feature name') end
local t = parse_int(ARGV[1], 'the as-of time', -LIMITS.time_ms, LIMITS.time_ms)
parse_names(ARGV, 2, 'fs_get_as_of')
check_entity_hashes(KEYS)
local n = #ARGV - 1
local names, fields = {}, {}
for i = 1, n do
  names[i] = ARGV[i + 1]
  fields[2 * i - 1], fields[2 * i] = names[i], names[i] .. '#'
end
local beyond, out = {}, {t, false}
-- One entity: its row of fields, its beyond-retention pairs added to `beyond`.
local function entity_row(e)
  local key, row, records = KEYS[e], {}, {}
  local kept = read_kept(key, names, fields)
  for i = 1, n do
    local name, cur, entries, cut = names[i], kept[i][1], kept[i][2], kept[i][3]
    -- The newest (event, version) at or before T among the kept versions.
    local best_v, best_e, best_x = nil, nil, nil
    if cur and cur.e <= t then best_v, best_e, best_x = cur.v, cur.e, cur.x end
    for _, entry in ipairs(entries) do
      local v, ev = entry[1], entry[2]
      if ev <= t and (not best_v or ev > best_e or (ev == best_e and v > best_v)) then
        best_v, best_e, best_x = v, ev, entry[3]
      end
    end
    -- A version cut from the index could be the answer unless the one found is at least as new as
    -- every cut one (a tie goes to the kept version: cut ones have lower version numbers).
    if cut > -LIMITS.time_ms - 1 and (not best_v or best_e < cut) then
      beyond[#beyond + 1] = e
      beyond[#beyond + 1] = i
      row[i] = false
    elseif best_v then
      local value = resolve_value(key, name, cur, entries, best_v, records)
      if not value then
        fail('FSCORRUPT', 'feature=' .. name .. string.format(' rule=record version %d is listed but its value is not kept', best_v))
      end
      row[i] = pack_head(best_x, best_e, best_v, 0, value)
    else
      row[i] = false
    end
  end
  return row
end
for e = 1, #KEYS do
  local mark = #beyond
  local row = entity_or_error(entity_row, e)
  if row.err then  -- its beyond-retention pairs are void
    for j = #beyond, mark + 1, -1 do beyond[j] = nil end
  end
  out[e + 2] = row
end
out[2] = beyond
return out
