--! include: lib/refresh_expiry.lua
--! include: lib/set_deadline.lua
-- settle_expiry(k, now, expires): after put_features wrote features with these expiries (ms or -1),
-- bring "#min" and the keys' deadline up to date in a few O(1) calls. The exact pass
-- (refresh_expiry, which reads every expiry) runs only when some feature has expired (the
-- entity's "#min" is past) or the entity had no deadline yet. Otherwise "#min" only ever moves
-- earlier and the deadline only later: a value may stay kept a little longer than needed (after
-- a TTL is shortened), never shorter, and a read never skips an expiry check it needs.
-- k = {values, expiry, history, writes}.
local function settle_expiry(k, now, expires)
  local rcall = redis.call
  local known = tonumber(rcall('HGET', k[1], '#min'))
  if known and known <= now then return refresh_expiry(k, now) end
  local earliest, latest = known, 0
  for i = 1, #expires do
    local at = expires[i]
    if at > 0 then
      if earliest == nil or at < earliest then earliest = at end
      if at > latest then latest = at end
    end
  end
  if earliest and earliest ~= known then rcall('HSET', k[1], '#min', earliest) end
  local untimed = rcall('HLEN', k[1]) - (earliest and 1 or 0) - rcall('HLEN', k[2])
  if untimed > 0 then return set_deadline(k, now, nil) end
  local deadline = rcall('PEXPIRETIME', k[1])
  if deadline < 0 then return refresh_expiry(k, now) end
  set_deadline(k, now, math.max(latest, deadline))
end
