-- drop_history(history_key, name, from): delete records "<name>#<from>", "<name>#<from-1>", ...
-- down to the first that is missing. Records are contiguous, so older ones are already gone.
local function drop_history(history_key, name, from)
  local v = from
  while v >= 1 and redis.call('HDEL', history_key, name .. '#' .. v) == 1 do
    v = v - 1
  end
end
