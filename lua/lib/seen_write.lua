-- seen_write(writes_key, write_id, window_ms) -> true when this write id was already applied to
-- the entity; always false when window_ms is 0 (write-id checks off).
local function seen_write(writes_key, write_id, window_ms)
  return window_ms > 0 and redis.call('ZSCORE', writes_key, write_id) ~= false
end
