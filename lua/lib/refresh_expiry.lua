--! include: lib/call_chunked.lua
--! include: lib/set_deadline.lua
-- refresh_expiry(k, now): drop the entity's expired features (their history stays),
-- record the earliest remaining expiry as field "#min" of the values hash (reads use it to skip
-- the expiry hash), and make the values, expiry and history keys expire with the last live
-- feature, or never if one has no TTL. An entity left with no value loses all four keys.
-- k = {values, expiry, history, writes}; the writes key keeps its own short expiry
-- (remember_write), never past the entity's. Fields of expiry are a subset of values.
local function refresh_expiry(k, now)
  local rcall = redis.call
  local flat = rcall('HGETALL', k[2])
  local latest, earliest, timed, dead = 0, nil, 0, {}
  for i = 1, #flat, 2 do
    local at = tonumber(flat[i + 1]) or 0  -- not a number: expired
    if at <= now then
      dead[#dead + 1] = flat[i]
    else
      timed = timed + 1
      if at > latest then latest = at end
      if earliest == nil or at < earliest then earliest = at end
    end
  end
  if #dead > 0 then
    call_chunked('HDEL', k[1], dead)
    call_chunked('HDEL', k[2], dead)
  end
  if earliest then
    rcall('HSET', k[1], '#min', earliest)
  else
    rcall('HDEL', k[1], '#min')
  end
  local live = rcall('HLEN', k[1]) - (earliest and 1 or 0)
  if live == 0 then
    rcall('DEL', k[1], k[2], k[3], k[4])
  else
    set_deadline(k, now, live == timed and latest or nil)
  end
end
