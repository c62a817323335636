-- remember_write(writes_key, write_id, now, window_ms): record an applied write id; forget ids
-- older than window_ms, keep at most the newest 1,000 per entity, and let the whole set expire
-- window_ms after the entity's last write. Nothing when window_ms is 0 (write-id checks off).
local function remember_write(writes_key, write_id, now, window_ms)
  if window_ms == 0 then return end
  local rcall = redis.call
  rcall('ZADD', writes_key, now, write_id)
  rcall('ZREMRANGEBYSCORE', writes_key, '-inf', now - window_ms)
  rcall('ZREMRANGEBYRANK', writes_key, 0, -1001)
  rcall('PEXPIRE', writes_key, window_ms)
end
