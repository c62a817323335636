-- now_ms() -> integer milliseconds since the epoch, from the server clock (TIME).
-- Every timestamp and expiry is taken from here, never from a client clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
