-- write_digest(write_id) -> how the write log "#w" knows a write id: the first 16 hex characters
-- of its SHA-1 (see seen_write, remember_write).
local function write_digest(write_id)
  return string.sub(redis.sha1hex(write_id), 1, 16)
end
