--! function: fs_delete
--! include: lib/fail.lua
--! include: lib/parse_entity_key.lua
--! include: lib/parse_log_key.lua
--! include: lib/append_log.lua
--! include: lib/parse_names.lua
--! include: lib/hmget_many.lua
--! include: lib/read_head.lua
--! include: lib/read_index.lua
--! include: lib/now_ms.lua
--! include: lib/adjust_refs.lua
--! include: lib/scan_heads.lua
--! include: lib/set_deadline.lua
-- Delete features of one entity — value, history and version counter — or the whole entity. A
-- deleted feature written again starts over at version 1. Records no kept version points at
-- any more are deleted with them.
--
-- Parse, then apply: the key and names are checked before the first write.
--
-- KEYS[1]  entity hash  <ns>:[<type>:]{<id>}:e
-- KEYS[2]  optional: the change log of the entity's slot, as fs_write; given, the deleted
--          features are appended to it (name, '' each; lib/append_log.lua)
-- ARGV     feature names (no '#', at most 10,000); none deletes the entity
-- Returns the number of features that existed (had a value or a history) and were deleted.
-- Errors: FSARG (malformed key or names)
if #KEYS ~= 1 and #KEYS ~= 2 then fail('FSARG', 'fs_delete takes the entity hash and optionally its change log') end
local key = parse_entity_key(KEYS[1], true)
local log = KEYS[2] and parse_log_key(key, KEYS[2])
parse_names(ARGV, 1, 'fs_delete')
local rcall = redis.call
local function logged(names)  -- the deleted features in the change log
  if log and #names > 0 then
    local now, fields = now_ms(), {}
    for i = 1, #names do fields[2 * i - 1], fields[2 * i] = names[i], '' end
    append_log(log, key, now, now, '', '', fields)
  end
end
if #ARGV == 0 then
  local names, count, deleted = {}, 0, {}
  for _, field in ipairs(rcall('HKEYS', key)) do
    local name = string.match(field, '^([^#]+)#?$')  -- "price" and "price#": the feature price
    if name and not names[name] then
      names[name] = true
      count = count + 1
      deleted[count] = name
    end
  end
  logged(deleted)  -- (first: lib/append_log.lua)
  rcall('DEL', key)
  return count
end
local fields = {}
for i, name in ipairs(ARGV) do
  fields[2 * i - 1] = name
  fields[2 * i] = name .. '#'
end
local got = hmget_many(key, fields)

-- Everything is checked: from here on, apply.
local deltas, count, gone, deleted = {}, 0, {}, {}
local function drop(seq)
  if seq > 0 then deltas[seq] = (deltas[seq] or 0) - 1 end
end
for i = 1, #ARGV do
  local cur, index = got[2 * i - 1], got[2 * i]
  if (cur or index) and not gone[ARGV[i]] then
    gone[ARGV[i]] = true
    count = count + 1
    deleted[count] = ARGV[i]
    local ok, head = pcall(read_head, ARGV[i], cur)  -- a damaged field points at nothing
    if ok and head then drop(head.s) end
    local readable, _, entries = pcall(read_index, ARGV[i], index or nil)
    for _, entry in ipairs(readable and entries or {}) do
      drop(entry[4])
      drop(entry[5])
    end
  end
end
if count == 0 then return 0 end
logged(deleted)  -- (first: lib/append_log.lua)
local seq = 0
local head = rcall('HGET', key, '#')
if head and #head == 16 then seq = struct.unpack('<i6', head) end
for i = 1, #fields, 1000 do rcall('HDEL', key, unpack(fields, i, math.min(i + 999, #fields))) end
adjust_refs(key, deltas)
local expiries = {}
for _, pair in ipairs(scan_heads(key, {})) do expiries[#expiries + 1] = pair[2].x end
set_deadline(key, seq, expiries, now_ms())
return count
