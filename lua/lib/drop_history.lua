--! include: lib/limits.lua
-- drop_history(history_key, name, from): delete records "<name>#<from>", "<name>#<from-1>", ...
-- down to the first that is missing. Records are contiguous and at most LIMITS.max_versions are
-- kept, so older ones are already gone and the loop ends after that many steps at most.
local function drop_history(history_key, name, from)
  local v, last = from, math.max(1, from - LIMITS.max_versions)
  while v >= last and redis.call('HDEL', history_key, name .. '#' .. v) == 1 do
    v = v - 1
  end
end
