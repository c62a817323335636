--! include: lib/hmget_many.lua
-- read_live(values_key, expiry_key, names, now) -> one value per name (false when missing or
-- expired at `now`, ms since the epoch). An expiry that is not a number counts as past.
-- The values hash holds "#min", the earliest expiry of the entity's features, next to them; while
-- it lies in the future no feature can have expired and the expiry hash is not read at all.
local function read_live(values_key, expiry_key, names, now)
  local n = #names
  names[n + 1] = '#min'
  local values = hmget_many(values_key, names)
  names[n + 1] = nil
  local earliest = values[n + 1]
  values[n + 1] = nil
  if earliest and (tonumber(earliest) or 0) <= now then
    local expiry = hmget_many(expiry_key, names)
    for i = 1, n do
      if expiry[i] and (tonumber(expiry[i]) or 0) <= now then values[i] = false end
    end
  end
  return values
end
