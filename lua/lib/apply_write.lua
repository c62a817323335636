--! include: lib/call_chunked.lua
--! include: lib/pack_record.lua
--! include: lib/adjust_refs.lua
--! include: lib/remember_write.lua
--! include: lib/scan_heads.lua
--! include: lib/set_deadline.lua
--! include: lib/index_header.lua
--! include: lib/read_index.lua
--! include: lib/index_cut.lua
--! include: lib/append_log.lua
-- apply_write(key, st, names, values, ttls, o, meta, now) -> the version each feature got: positive
-- when it became the current value, negative when it went to history only (an event older than
-- the current value's). `st` is read_entity's state, names/values/ttls parse_features' lists, `o`
-- the call's options (parse_options, with o.digest: write_digest of o.id), `meta` the lineage map
-- (msgpack bytes). Only writes: every
-- check is done before (parse, then apply). Layout and rules: docs/storage_format.md.
--   * Versions: one more than the feature's highest so far, so 1, 2, 3, ... with no gap or repeat.
--   * Event time (o.event_time, default now): the newest event is current (ties: the later
--     write); an older one is recorded in history and leaves the current value alone. An expired
--     current value never wins.
--   * History: a replaced value moves into the record of this write ("#<seq>"), which also keeps
--     the write's time, id and meta once for all its features; an unchanged value is not copied
--     (a mark says "equal to the value this write stored"). Each feature's index ("<name>#")
--     lists its older versions in version order; at most o.max_versions versions are kept, the
--     current one included. A record lives as long as a version points at it (its reference
--     count). A write adds at most one entry per feature, so the index is edited as a string: an
--     append (an insert for an older event), and the oldest entries cut off the front. The index
--     remembers the newest event time among the versions it cut (as-of reads need it), so it is
--     kept once a version was cut, even when it lists none.
--   * Expiry: each current value carries its own; expired values of other features move to
--     history when the entity's earliest expiry has passed; the key expires with its last live
--     value, or never while one has no expiry.
--   * Change log: with o.log (a stream key, lib/parse_log_key.lua), every version this write makes is
--     also appended there, one entry for the write (lib/append_log.lua), each as a current value
--     is stored (head, value): the field the write stores, or (an older event) one packed alike.
local function apply_write(key, st, names, values, ttls, o, meta, now)
  local sub, pack, unpack_at = string.sub, struct.pack, struct.unpack
  local no_cut = -LIMITS.time_ms - 1
  local keep = o.max_versions
  local event = o.event_time or now
  -- This write's record number: when it keeps history, or moves expired values of other
  -- features to history (with max_versions 0 too: their versions are theirs to keep). Its own
  -- current values point at the record only when it keeps history (head_seq).
  local seq = (keep > 0 or (st.expired and #st.expired > 0)) and st.seq + 1 or 0
  local head_seq = keep > 0 and seq or 0
  local untimed, earliest, latest = st.untimed, st.earliest, 0
  local set, unset, deltas = {}, {}, {}
  local own, held_names, held_values = 0, {}, {}
  local versions, expiries = {}, {}
  local nset, nheld = 0, 0  -- #set and #held_names, kept by hand on the hot path
  local logged = o.log and {}  -- name, head | value of each new version (lib/append_log.lua)
  local nlogged = 0

  -- One feature: `value` (nil: move the expired current value to history) with its expiry.
  local function settle(name, cur, index, value, expires, purge)
    local header, top, newest_cut = 12, 0, no_cut  -- (read_entity checked the index's shape)
    if index then
      if #index % 30 == 12 then
        top, newest_cut = unpack_at('<i6i6', index)
      else  -- an index of before cuts were kept (index_header): rewritten with one
        local entries
        header, top, entries = 6, read_index(name, index)
        newest_cut = index_cut(top, entries, cur, nil)
      end
    end
    if cur and cur.v > top then top = cur.v end
    local highest = top  -- before this write: no kept version is higher
    -- The entry this write adds: version, event, value, maker.
    local entry, entry_event, version, held, made_by, made_here
    local current, result = 0, nil
    if value then
      top = top + 1
      if not cur or (cur.x > 0 and cur.x <= now) or event >= cur.e then
        set[nset + 1], set[nset + 2] = name, pack('<i6i6i6i6c0', expires, event, top, head_seq, value)  -- (pack_head)
        if logged then  -- the log takes the field as stored
          logged[nlogged + 1], logged[nlogged + 2], nlogged = name, set[nset + 2], nlogged + 2
        end
        nset = nset + 2
        expiries[#expiries + 1] = expires
        if head_seq > 0 then own = own + 1 end
        if expires == 0 then
          untimed = untimed + 1
        else
          if earliest == 0 or expires < earliest then earliest = expires end
          if expires > latest then latest = expires end
        end
        if cur then
          if cur.x == 0 then untimed = untimed - 1 end
          local old = sub(cur.raw, 25)
          entry, version, held, made_by = pack('<i6i6i6i6i6', cur.v, cur.e, cur.x, cur.s, seq), cur.v, old ~= value and old, cur.s
          entry_event = cur.e
        end
        current, result = top, top
      else
        entry, version, held, made_by, made_here = pack('<i6i6i6i6i6', top, event, expires, seq, seq), top, value, seq, true
        entry_event = event
        if logged then
          logged[nlogged + 1], logged[nlogged + 2], nlogged = name, pack('<i6i6i6i6c0', expires, event, top, seq, value), nlogged + 2
        end
        expiries[#expiries + 1] = cur.x
        current, result = cur.v, -top
      end
    else
      unset[#unset + 1] = name
      entry, version, held, made_by = pack('<i6i6i6i6i6', cur.v, cur.e, cur.x, cur.s, seq), cur.v, sub(cur.raw, 25), cur.s
      entry_event = cur.e
    end
    -- The index after this write: the older entries, this write's entry in version order, the
    -- oldest cut off beyond the limit. Usually the entry goes last: one string is built.
    local n = index and (#index - header) / 30 or 0
    -- An expired value moved to history keeps every version of its feature: trimming is left
    -- to that feature's own next write, under its writer's max_versions.
    local limit = purge and n + 1 or keep - (current > 0 and 1 or 0)
    if limit < 0 then limit = 0 end
    local drop = n + (entry and 1 or 0) - limit
    local kept, rest = entry ~= nil, ''  -- the index is then: top, cut .. rest .. entry
    -- The entry goes last unless some kept version is higher than it (events out of order).
    if not entry or n == 0 or version >= highest or unpack_at('<i6', index, #index - 29) < version then
      local cut = drop < 0 and 0 or drop < n and drop or n  -- older entries dropped
      for at = header + 1, header + cut * 30, 30 do
        local _, e, _, made, holder = unpack_at('<i6i6i6i6i6', index, at)
        if e > newest_cut then newest_cut = e end
        deltas[made] = (deltas[made] or 0) - 1
        deltas[holder] = (deltas[holder] or 0) - 1
      end
      if entry and drop > n then  -- no room even for it: the version it stood for is gone
        kept, entry = false, nil
        if entry_event > newest_cut then newest_cut = entry_event end
        deltas[made_by] = (deltas[made_by] or 0) - 1
      end
      if cut < n then rest = sub(index, header + 1 + cut * 30) end
    else  -- an older version than some kept one (after events out of order): insert, then cut
      local body = sub(index, header + 1)
      local at = #body + 1
      while at > 1 and unpack_at('<i6', body, at - 30) > version do at = at - 30 end
      body = sub(body, 1, at - 1) .. entry .. sub(body, at)
      if drop > 0 then
        for at2 = 1, drop * 30, 30 do
          local v, e, _, made, holder = unpack_at('<i6i6i6i6i6', body, at2)
          if v == version then kept = false end
          if e > newest_cut then newest_cut = e end
          deltas[made] = (deltas[made] or 0) - 1
          deltas[holder] = (deltas[holder] or 0) - 1
        end
        body = sub(body, drop * 30 + 1)
      end
      rest, entry = body, nil
    end
    if kept and seq > 0 then
      own, nheld = own + (made_here and 2 or 1), nheld + 1
      held_names[nheld], held_values[nheld] = name, held
    end
    if rest ~= '' or entry or top > current or newest_cut ~= no_cut then
      set[nset + 1], set[nset + 2] = name .. '#', pack('<i6i6c0c0', top, newest_cut, rest, entry or '')
      nset = nset + 2
    elseif index then
      unset[#unset + 1] = name .. '#'
    end
    return result
  end

  for i = 1, #names do
    local expires = ttls[i] > 0 and now + ttls[i] or 0
    versions[i] = settle(names[i], st.cur[i], st.index[i], values[i], expires)
  end
  for _, dead in ipairs(st.expired or {}) do
    settle(dead[1], dead[2], dead[3], nil, 0, true)
  end

  if seq > 0 and own > 0 then
    set[#set + 1] = string.format('#%d', seq)
    set[#set + 1] = pack_record(own, now, o.id or '', meta, held_names, held_values)
  end
  if o.dedup_ms > 0 and o.id then
    set[#set + 1] = '#w'
    set[#set + 1] = remember_write(st.log, o.digest, now, o.dedup_ms)
  end
  local header = math.max(seq, st.seq)  -- (seq is st.seq + 1 or 0)
  set[#set + 1] = '#'
  set[#set + 1] = pack('<i6I4i6', header, untimed, earliest)
  -- The log first: it is the one write that can fail (a key that is not a stream), and then
  -- nothing is written yet.
  if logged then append_log(o.log, key, now, event, o.id or '', meta, logged) end
  call_chunked('HSET', key, set)
  if #unset > 0 then call_chunked('HDEL', key, unset) end
  deltas[seq] = nil
  adjust_refs(key, deltas)

  -- The key's deadline: exact when the entity was scanned (or must be), else only ever later.
  local rcall = redis.call
  if st.others then
    for _, pair in ipairs(st.others) do
      local x = pair[2].x
      if x == 0 or x > now then expiries[#expiries + 1] = x end
    end
    set_deadline(key, header, expiries, now)
  elseif untimed > 0 then
    if st.untimed == 0 and st.known then rcall('PERSIST', key) end
  elseif not st.known then
    rcall('PEXPIREAT', key, latest)
  else
    local deadline = st.untimed == 0 and rcall('PEXPIRETIME', key) or -1
    if deadline < 0 then
      local all = {}
      for _, pair in ipairs(scan_heads(key, {})) do all[#all + 1] = pair[2].x end
      set_deadline(key, header, all, now)
    elseif latest > deadline then
      rcall('PEXPIREAT', key, latest)
    end
  end
  return versions
end
