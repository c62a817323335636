--! include: lib/call_chunked.lua
--! include: lib/pack_head.lua
--! include: lib/pack_index.lua
--! include: lib/pack_record.lua
--! include: lib/adjust_refs.lua
--! include: lib/remember_write.lua
--! include: lib/scan_heads.lua
--! include: lib/set_deadline.lua
-- apply_write(key, st, names, values, ttls, o, meta, now) -> the version each feature got: positive
-- when it became the current value, negative when it went to history only (an event older than
-- the current value's). `st` is read_entity's state, names/values/ttls parse_features' lists, `o`
-- the call's options (parse_options), `meta` the lineage map (msgpack bytes). Only writes: every
-- check is done before (parse, then apply). Layout and rules: docs/storage_format.md.
--   * Versions: one more than the feature's highest so far, so 1, 2, 3, ... with no gap or repeat.
--   * Event time (o.event_time, default now): the newest event is current (ties: the later
--     write); an older one is recorded in history and leaves the current value alone. An expired
--     current value never wins.
--   * History: a replaced value moves into the record of this write ("#<seq>"), which also keeps
--     the write's time, id and meta once for all its features; an unchanged value is not copied
--     (a mark says "equal to the value this write stored"). Each feature's index ("<name>#")
--     lists its older versions; at most o.max_versions versions are kept, the current one
--     included. A record lives as long as a version points at it (its reference count).
--   * Expiry: each current value carries its own; expired values of other features move to
--     history when the entity's earliest expiry has passed; the key expires with its last live
--     value, or never while one has no expiry.
local function apply_write(key, st, names, values, ttls, o, meta, now)
  local keep = o.max_versions
  local event = o.event_time or now
  local seq = keep > 0 and st.seq + 1 or 0
  local untimed, earliest, latest = st.untimed, st.earliest, 0
  local set, unset, deltas = {}, {}, {}
  local own, held_names, held_values = 0, {}, {}
  local versions, heads = {}, {}

  -- One feature: `value` (nil: move the expired current value to history) with its expiry.
  local function settle(name, cur, counter, entries, value, expires)
    local top = math.max(counter, cur and cur.v or 0)
    local moved, current, result = {}, 0, nil
    if value then
      top = top + 1
      if not cur or (cur.x > 0 and cur.x <= now) or event >= cur.e then
        set[#set + 1] = name
        set[#set + 1] = pack_head(expires, event, top, seq) .. value
        heads[#heads + 1] = {x = expires}
        if seq > 0 then own = own + 1 end
        if expires == 0 then
          untimed = untimed + 1
        else
          if earliest == 0 or expires < earliest then earliest = expires end
          if expires > latest then latest = expires end
        end
        if cur then
          if cur.x == 0 then untimed = untimed - 1 end
          local old = string.sub(cur.raw, 25)
          entries[#entries + 1] = {cur.v, cur.e, cur.x, cur.s, seq}
          moved[cur.v] = old ~= value and old
        end
        current, result = top, top
      else
        entries[#entries + 1] = {top, event, expires, seq, seq}
        moved[top] = value
        heads[#heads + 1] = cur
        current, result = cur.v, -top
      end
    else
      unset[#unset + 1] = name
      entries[#entries + 1] = {cur.v, cur.e, cur.x, cur.s, seq}
      moved[cur.v] = string.sub(cur.raw, 25)
    end
    for i = #entries, 2, -1 do  -- keep entries in version order (a replaced value may precede late events)
      if entries[i][1] >= entries[i - 1][1] then break end
      entries[i], entries[i - 1] = entries[i - 1], entries[i]
    end
    local limit = math.max(keep - (current > 0 and 1 or 0), 0)
    while #entries > limit do
      local gone = table.remove(entries, 1)
      deltas[gone[4]] = (deltas[gone[4]] or 0) - 1
      deltas[gone[5]] = (deltas[gone[5]] or 0) - 1
    end
    if seq > 0 then
      for _, entry in ipairs(entries) do
        if entry[4] == seq then own = own + 1 end
        if entry[5] == seq then
          own = own + 1
          held_names[#held_names + 1] = name
          held_values[#held_values + 1] = moved[entry[1]]
        end
      end
    end
    if #entries > 0 or top > current then
      set[#set + 1] = name .. '#'
      set[#set + 1] = pack_index(top, entries)
    elseif counter > 0 then
      unset[#unset + 1] = name .. '#'
    end
    return result
  end

  for i = 1, #names do
    local expires = ttls[i] > 0 and now + ttls[i] or 0
    versions[i] = settle(names[i], st.cur[i], st.counters[i], st.entries[i], values[i], expires)
  end
  for _, dead in ipairs(st.expired or {}) do
    settle(dead[1], dead[2], dead[3], dead[4], nil, 0)
  end

  if seq > 0 and own > 0 then
    set[#set + 1] = '#' .. seq
    set[#set + 1] = pack_record(own, now, o.id or '', meta, held_names, held_values)
  end
  if o.dedup_ms > 0 and o.id then
    set[#set + 1] = '#w'
    set[#set + 1] = remember_write(st.log, string.sub(redis.sha1hex(o.id), 1, 16), now, o.dedup_ms)
  end
  local header = math.max(seq, st.seq)
  set[#set + 1] = '#'
  set[#set + 1] = struct.pack('<i6I4i6', header, untimed, earliest)
  call_chunked('HSET', key, set)
  if #unset > 0 then call_chunked('HDEL', key, unset) end
  deltas[seq] = nil
  adjust_refs(key, deltas)

  -- The key's deadline: exact when the entity was scanned (or must be), else only ever later.
  local rcall = redis.call
  if st.others then
    for _, pair in ipairs(st.others) do
      local x = pair[2].x
      if x == 0 or x > now then heads[#heads + 1] = pair[2] end
    end
    set_deadline(key, header, heads, now)
  elseif untimed > 0 then
    if st.untimed == 0 and st.known then rcall('PERSIST', key) end
  elseif not st.known then
    rcall('PEXPIREAT', key, latest)
  else
    local deadline = st.untimed == 0 and rcall('PEXPIRETIME', key) or -1
    if deadline < 0 then
      local all = {}
      for _, pair in ipairs(scan_heads(key, {})) do all[#all + 1] = pair[2] end
      set_deadline(key, header, all, now)
    elseif latest > deadline then
      rcall('PEXPIREAT', key, latest)
    end
  end
  return versions
end
