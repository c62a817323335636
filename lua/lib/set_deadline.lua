-- set_deadline(k, now, latest): make the values, expiry and history keys expire at `latest` (ms
-- since the epoch), or never when `latest` is nil, and keep the write-id set from outliving them.
-- k = {values, expiry, history, writes}.
local function set_deadline(k, now, latest)
  local rcall = redis.call
  if latest == nil then
    for i = 1, 3 do rcall('PERSIST', k[i]) end
    return
  end
  for i = 1, 3 do rcall('PEXPIREAT', k[i], latest) end
  if rcall('PTTL', k[4]) > latest - now then rcall('PEXPIREAT', k[4], latest) end
end
