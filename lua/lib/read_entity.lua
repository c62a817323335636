--! include: lib/fail.lua
--! include: lib/hmget_many.lua
--! include: lib/read_head.lua
--! include: lib/read_index.lua
--! include: lib/scan_heads.lua
-- read_entity(key, names, now) -> what a write of `names` to the entity must know, read before it
-- writes anything (parse, then apply): for each name its current value (read_head, false when
-- absent), version counter and history entries (read_index); the entity's sequence number of
-- records, count of current values without expiry, earliest expiry (fields "#": int48 seq |
-- uint32 untimed | int48 earliest ms, 0: none) and write log ("#w"). When the earliest expiry
-- has passed, also every other current value (`others`, scan_heads) and the history of the
-- expired ones (`expired`: {name, head, counter, entries}): the write moves them to history.
-- FSCORRUPT (rule head|index|entity) for a field of the written features, or "#", of another shape.
local function read_entity(key, names, now)
  local n = #names
  local fields = {}
  for i = 1, n do
    fields[i] = names[i]
    fields[n + i] = names[i] .. '#'
  end
  fields[2 * n + 1] = '#'
  fields[2 * n + 2] = '#w'
  local got = hmget_many(key, fields)
  local st = {cur = {}, counters = {}, entries = {}, log = got[2 * n + 2], seq = 0, untimed = 0, earliest = 0}
  for i = 1, n do
    st.cur[i] = read_head(names[i], got[i]) or false
    st.counters[i], st.entries[i] = read_index(names[i], got[n + i])
  end
  local head = got[2 * n + 1]
  if head then
    if #head ~= 16 then fail('FSCORRUPT', 'feature=# rule=entity the entity header is not an fsredis header') end
    st.seq, st.untimed, st.earliest = struct.unpack('<i6I4i6', head)
    st.known = true
  end
  if st.known and st.earliest > 0 and st.earliest <= now then
    local written = {}
    for i = 1, n do written[names[i]] = true end
    st.others = scan_heads(key, written)
    st.expired = {}
    local dead = {}
    for _, pair in ipairs(st.others) do
      local x = pair[2].x
      if x > 0 and x <= now then dead[#dead + 1] = pair end
    end
    local indexes = {}
    for i, pair in ipairs(dead) do indexes[i] = pair[1] .. '#' end
    indexes = hmget_many(key, indexes)
    for i, pair in ipairs(dead) do
      local ok, counter, entries = pcall(read_index, pair[1], indexes[i])
      if ok then st.expired[#st.expired + 1] = {pair[1], pair[2], counter, entries} end
    end
  end
  return st
end
