--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/hmget_many.lua
--! include: lib/read_head.lua
--! include: lib/scan_heads.lua
--! include: lib/index_header.lua
-- read_entity(key, names, now, absent) -> what a write of `names` to the entity must know, read before it
-- writes anything (parse, then apply): for each name its current value (read_head, false when
-- absent) and its version index as stored (field "<name>#", false when absent; see read_index);
-- the entity's record number, count of current values without expiry, earliest expiry (field
-- "#": int48 seq | uint32 untimed | int48 earliest ms, 0: none) and write log ("#w"). When the
-- earliest expiry has passed, also every other current value (`others`, scan_heads) and, for the
-- expired ones, `expired` = {name, head, index}: the write moves them to history.
-- With `absent` (the key does not exist) nothing is read.
-- FSCORRUPT (rule head|index|entity) for a field of the written features, or "#", of another shape
-- or with a version counter or record number out of range (no write could follow it).
local function read_entity(key, names, now, absent)
  local n = #names
  if absent then
    local none = {}
    for i = 1, n do none[i] = false end
    return {cur = none, index = none, seq = 0, untimed = 0, earliest = 0}
  end
  local fields = {}
  for i = 1, n do
    fields[i] = names[i]
    fields[n + i] = names[i] .. '#'
  end
  fields[2 * n + 1] = '#'
  fields[2 * n + 2] = '#w'
  local got = hmget_many(key, fields)
  local st = {cur = {}, index = {}, log = got[2 * n + 2], seq = 0, untimed = 0, earliest = 0}
  local last = LIMITS.version - 1  -- a version counter there can have no next version
  for i = 1, n do
    local name = names[i]
    local cur = read_head(name, got[i]) or false
    local index, header, counter = got[n + i], true, 0
    if index then header, counter = index_header(index) end
    if not header or counter < 0 or counter > last then
      fail('FSCORRUPT', 'feature=' .. name .. ' rule=index the version index is not an fsredis index')
    end
    if counter == last or (cur and cur.v >= last) then
      fail('FSCORRUPT', 'feature=' .. name .. ' rule=index the version counter is at its limit: no version can follow')
    end
    st.cur[i], st.index[i] = cur, index or false
  end
  local head = got[2 * n + 1]
  if head then
    if #head ~= 16 then fail('FSCORRUPT', 'feature=# rule=entity the entity header is not an fsredis header') end
    st.seq, st.untimed, st.earliest = struct.unpack('<i6I4i6', head)
    if st.seq < 0 or st.seq >= LIMITS.version - 1 then
      fail('FSCORRUPT', 'feature=# rule=entity the entity header holds a record number out of range')
    end
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
      local index = indexes[i]
      if not index or index_header(index) then
        st.expired[#st.expired + 1] = {pair[1], pair[2], index or false}
      end
    end
  end
  return st
end
