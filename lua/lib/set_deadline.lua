-- set_deadline(key, seq, expiries, now) -> nothing: from `expiries` (of every current value of
-- the entity, ms; 0: none), write the entity header "#" (record number `seq`, count of values
-- without expiry, earliest expiry, an expired one included: the next write moves it to history)
-- and make the key expire with its last live value, or never while one has no expiry. An entity
-- with no live value is deleted.
local function set_deadline(key, seq, expiries, now)
  local rcall = redis.call
  local untimed, earliest, latest = 0, 0, 0
  for _, x in ipairs(expiries) do
    if x == 0 then
      untimed = untimed + 1
    else
      if earliest == 0 or x < earliest then earliest = x end
      if x > now and x > latest then latest = x end
    end
  end
  if untimed == 0 and latest == 0 then
    rcall('DEL', key)
    return
  end
  rcall('HSET', key, '#', struct.pack('<i6I4i6', seq, untimed, earliest))
  if untimed > 0 then
    rcall('PERSIST', key)
  else
    rcall('PEXPIREAT', key, latest)
  end
end
