--! include: lib/reject.lua
-- check_feature(name, value, ttl_ms, max_bytes) -> the value's msgpack decoding (nil for a tagged
-- value), or FSVALIDATION unless (name, value, ttl) can be stored.
-- Names: 1-128 chars of [A-Za-z0-9_.-], starting with a letter or '_'.
-- Values: non-empty, at most max_bytes, and either one msgpack scalar/list (floats finite) or a
-- tagged blob: "\xC1e4\0" + float32 LE, "\xC1e2\0" + float16 LE, "\xC1t\0\0" + int64 LE microseconds.
-- ttl_ms: -1 (never expires) or a positive integer.
local function check_feature(name, value, ttl, max_bytes)
  if #name == 0 or #name > 128 or not string.find(name, '^[%a_][%w_.%-]*$') then
    reject(name, 'name', 'names are 1-128 characters of A-Z a-z 0-9 _ . - and start with a letter or _')
  end
  local size = #value
  if size == 0 then reject(name, 'encoding', 'the value is empty') end
  if size > max_bytes then
    reject(name, 'size', 'the value is ' .. size .. ' bytes, more than the limit of ' .. max_bytes)
  end
  if ttl ~= -1 and (ttl ~= math.floor(ttl) or ttl <= 0) then
    reject(name, 'ttl', 'the TTL must be a positive number of milliseconds or -1')
  end
  if string.byte(value, 1) == 0xC1 then
    local tag = string.sub(value, 2, 4)
    local ok = (tag == 'e4\0' and size > 4 and (size - 4) % 4 == 0)
      or (tag == 'e2\0' and size > 4 and (size - 4) % 2 == 0)
      or (tag == 't\0\0' and size == 12)
    if not ok then reject(name, 'encoding', 'unknown or truncated tagged value') end
    return nil
  end
  local decoded = {pcall(cmsgpack.unpack, value)}
  if not decoded[1] or #decoded > 2 then
    reject(name, 'encoding', 'the value is not exactly one msgpack object')
  end
  local v = decoded[2]
  if type(v) == 'number' and (v ~= v or v == math.huge or v == -math.huge) then
    reject(name, 'finite', 'NaN and infinity are not stored')
  end
  return v
end
