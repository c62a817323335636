-- remember_write(log, digest, now, window_ms) -> the write log (field "#w", see seen_write) with
-- `digest` added at time `now` (ms), entries older than window_ms and all but the newest 256
-- dropped (the log is copied on every write: 256 entries keep that under 6 KB). A log of another
-- shape starts over. Entries are appended, so they are oldest first.
local function remember_write(log, digest, now, window_ms)
  if not log or #log % 22 ~= 0 then log = '' end
  local n = #log / 22
  local first = math.max(1, n - 254)  -- keep at most 255 old ones
  while first <= n and struct.unpack('<i6', log, (first - 1) * 22 + 17) <= now - window_ms do
    first = first + 1
  end
  return string.sub(log, (first - 1) * 22 + 1) .. digest .. struct.pack('<i6', now)
end
