--! include: lib/hmget_many.lua
--! include: lib/call_chunked.lua
--! include: lib/drop_history.lua
-- put_features(k, names, values, expires, now, max_versions, write_id, meta) -> the new versions.
-- k = {values, expiry, history, writes} keys of the entity; names/values/expires are parallel
-- lists (expiry in ms since the epoch, or -1). Versions come from the counter field <name> of the
-- history hash: 1, 2, 3, ... with no gap or repeat (the call is atomic). When max_versions > 0 a
-- record "<name>#<version>" is added:
--   uint32 LE n | msgpack [version, now_ms, write_id, expires_at_ms or -1] | meta   (n bytes)
--   | the value, appended once the version is no longer current (it lives in values until then).
-- Records older than the newest max_versions are deleted. A handful of calls, whatever the count.
local function put_features(k, names, values, expires, now, max_versions, write_id, meta)
  local rcall = redis.call
  local n = #names
  local counters = hmget_many(k[3], names)
  local versions, history = {}, {}
  for i = 1, n do
    versions[i] = (tonumber(counters[i]) or 0) + 1
    history[#history + 1] = names[i]
    history[#history + 1] = versions[i]
  end
  if max_versions > 0 then
    local previous = {}
    for i = 1, n do previous[i] = names[i] .. '#' .. (versions[i] - 1) end
    local records = hmget_many(k[3], previous)
    local current = hmget_many(k[1], names)
    local trim, beyond = {}, {}
    for i = 1, n do
      if records[i] and current[i] then
        history[#history + 1] = previous[i]
        history[#history + 1] = records[i] .. current[i]
      end
      local head = cmsgpack.pack({versions[i], now, write_id, expires[i]}) .. meta
      history[#history + 1] = names[i] .. '#' .. versions[i]
      history[#history + 1] = struct.pack('<I4', #head) .. head
      local oldest = versions[i] - max_versions
      if oldest >= 1 then
        trim[#trim + 1] = names[i] .. '#' .. oldest
        beyond[#beyond + 1] = names[i] .. '#' .. (oldest - 1)
      end
    end
    call_chunked('HSET', k[3], history)
    if #trim > 0 then
      call_chunked('HDEL', k[3], trim)
      -- Records older still exist only if max_versions was lowered: drop them too.
      local left = hmget_many(k[3], beyond)
      for i = 1, #left do
        if left[i] then
          local name, version = string.match(beyond[i], '^(.*)#(%d+)$')
          drop_history(k[3], name, tonumber(version))
        end
      end
    end
  else
    call_chunked('HSET', k[3], history)
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
