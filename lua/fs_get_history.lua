--! function: fs_get_history
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/parse_names.lua
--! include: lib/check_entity_hashes.lua
--! include: lib/read_kept.lua
--! include: lib/read_record.lua
--! include: lib/hmget_many.lua
--! include: lib/entity_or_error.lua
-- The kept history of features of many entities, every version with its event time, expiry and
-- value: what a point-in-time join (training data) needs to answer for many times at once, read
-- in one call instead of one as-of read per time. The versions a join may not use are said too:
-- the index's cut (docs/storage_format.md, "As-of reads").
-- The keys may lie in different slots on a standalone server; on a cluster the client sends one
-- call per slot, so all keys of a call share it. No TIME: a read-only ACL may run it.
--
-- KEYS[i]  entity hash of entity i   <ns>:[<type>:]{<id>}:e; 1 to 10,000
-- ARGV     feature names (at least one; no '#', at most 10,000)
-- Returns one list per entity in KEYS order, of one entry per name: {cut, versions, value...}:
--         cut is the newest event time among the versions trimmed from the history (ms), or nil
--         when none was; versions a string of 24 bytes per kept version (int64 LE version |
--         int64 LE event time ms | int64 LE expiry ms, 0: none): the older versions in version
--         order, then the current value; then the value of each in the same order, as stored (docs/storage_format.md, "Values"). An entity whose stored
--         fields cannot be read (written around the library) has, in place of its list, the error
--         FSCORRUPT feature=<name> rule=head|index|record.
-- Errors: FSARG (no names, too many keys or names, keys that are not entity hashes or not hashes)
if #KEYS == 0 or #KEYS > LIMITS.entities then fail('FSARG', 'fs_get_history takes 1 to ' .. LIMITS.entities .. ' entities') end
if #ARGV == 0 then fail('FSARG', 'fs_get_history needs at least one feature name') end
parse_names(ARGV, 1, 'fs_get_history')
check_entity_hashes(KEYS)
local n, pack = #ARGV, struct.pack
local fields = {}
for i = 1, n do
  fields[2 * i - 1] = ARGV[i]
  fields[2 * i] = ARGV[i] .. '#'
end
local none = -LIMITS.time_ms - 1

-- The kept versions of every requested feature of one entity, each value resolved once: the
-- records they point at are read with one HMGET, and a value marked "equal to the value this
-- write stored" is taken from the newer version that write made, walking newest first (the walk
-- of resolve_value, done for all versions at once).
local function entity_history(key)
  local kept, seqs, wanted = read_kept(key, ARGV, fields), {}, {}
  for i = 1, n do
    local name = ARGV[i]
    for _, entry in ipairs(kept[i][2]) do
      local holder = entry[5]
      if holder <= 0 then
        fail('FSCORRUPT', 'feature=' .. name .. string.format(' rule=record the history record of version %d is missing or unreadable', entry[1]))
      end
      if not wanted[holder] then
        wanted[holder] = true
        seqs[#seqs + 1] = holder
      end
    end
  end
  local records = {}
  if #seqs > 0 then
    local names = {}
    for j, seq in ipairs(seqs) do names[j] = string.format('#%d', seq) end
    local raws = hmget_many(key, names)
    for j, seq in ipairs(seqs) do records[seq] = read_record(raws[j] or nil) or false end
  end
  local row = {}
  for i = 1, n do
    local name, cur, entries, cut = ARGV[i], kept[i][1], kept[i][2], kept[i][3]
    local count = #entries + (cur and 1 or 0)
    local item, numbers, made = {cut ~= none and cut or false, ''}, {}, {}
    if cur then
      local value = string.sub(cur.raw, 25)
      if cur.s > 0 then made[cur.s] = value end
      item[2 + count] = value
      numbers[3 * count - 2], numbers[3 * count - 1], numbers[3 * count] = cur.v, cur.e, cur.x
    end
    for k = #entries, 1, -1 do  -- newest version first
      local entry = entries[k]
      local rec = records[entry[5]]
      local value = rec and rec.held[name]
      if value == true then value = made[entry[5]] end
      if not value then
        fail('FSCORRUPT', 'feature=' .. name .. string.format(' rule=record the history record of version %d is missing or unreadable', entry[1]))
      end
      if entry[4] > 0 then made[entry[4]] = value end
      item[2 + k] = value
      numbers[3 * k - 2], numbers[3 * k - 1], numbers[3 * k] = entry[1], entry[2], entry[3]
    end
    local parts = {}
    for first = 1, count, 1000 do  -- one struct.pack per 1,000 versions
      local last = math.min(first + 999, count)
      parts[#parts + 1] = pack(string.rep('<i8i8i8', last - first + 1), unpack(numbers, 3 * first - 2, 3 * last))
    end
    item[2] = table.concat(parts)
    row[i] = item
  end
  return row
end

local out = {}
for e = 1, #KEYS do out[e] = entity_or_error(entity_history, KEYS[e]) end
return out
