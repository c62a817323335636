--! include: lib/hmget_many.lua
--! include: lib/call_chunked.lua
--! include: lib/drop_history.lua
--! include: lib/counter.lua
--! include: lib/stored_counter.lua
-- put_features(k, names, values, expires, now, max_versions, write_id, meta) -> the new versions.
-- k = {values, expiry, history, writes} keys of the entity; names/values/expires are parallel
-- lists (expiry in ms since the epoch, or -1); meta is the msgpack lineage map every record gets,
-- or a list of one per feature. Versions come from the counter field <name> of the
-- history hash: 1, 2, 3, ... with no gap or repeat (the call is atomic). When max_versions > 0 a
-- record "<name>#<version>" is added (layout in docs/storage_format.md):
--   uint32 n | float64 version | float64 now_ms | float64 expires_ms or -1 | uint32 w | write id (w)
--   | meta (msgpack map) -- n counts the bytes after itself up to here -- | the value.
-- Records older than the newest max_versions are deleted. The history field "#keep" remembers the
-- largest max_versions used on the entity; only when the current one is smaller are older records
-- looked for and dropped. A handful of calls, whatever the number of features. It reads before it
-- writes: a counter written around the library (not a number) is FSCORRUPT with nothing written.
local function put_features(k, names, values, expires, now, max_versions, write_id, meta)
  local n = #names
  names[n + 1] = '#keep'
  local counters = hmget_many(k[3], names)
  names[n + 1] = nil
  local keep = counter(counters[n + 1]) or 0
  local versions, history, trim = {}, {}, {}
  for i = 1, n do
    versions[i] = stored_counter(names[i], counters[i]) + 1  -- read before anything is written
    history[#history + 1] = names[i]
    history[#history + 1] = versions[i]
  end
  if max_versions > 0 then
    if max_versions > keep then
      history[#history + 1] = '#keep'
      history[#history + 1] = max_versions
    end
    local shared = type(meta) == 'string'
    for i = 1, n do
      local m = shared and meta or meta[i]
      history[#history + 1] = names[i] .. '#' .. versions[i]
      history[#history + 1] = struct.pack('<I4dddI4c0c0c0', 28 + #write_id + #m, versions[i], now, expires[i],
        #write_id, write_id, m, values[i])
      if versions[i] > max_versions then trim[#trim + 1] = names[i] .. '#' .. (versions[i] - max_versions) end
    end
  end
  call_chunked('HSET', k[3], history)
  if max_versions > 0 then
    if #trim > 0 then call_chunked('HDEL', k[3], trim) end
    if keep > max_versions then
      -- max_versions was lowered since: records older than the newest max_versions may remain.
      for i = 1, n do drop_history(k[3], names[i], versions[i] - max_versions - 1) end
    end
  end
  local set_values, set_expiry, unset_expiry = {}, {}, {}
  for i = 1, n do
    set_values[#set_values + 1] = names[i]
    set_values[#set_values + 1] = values[i]
    if expires[i] > 0 then
      set_expiry[#set_expiry + 1] = names[i]
      set_expiry[#set_expiry + 1] = expires[i]
    else
      unset_expiry[#unset_expiry + 1] = names[i]
    end
  end
  call_chunked('HSET', k[1], set_values)
  if #set_expiry > 0 then call_chunked('HSET', k[2], set_expiry) end
  if #unset_expiry > 0 then call_chunked('HDEL', k[2], unset_expiry) end
  return versions
end
