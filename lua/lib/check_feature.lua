--! include: lib/reject.lua
--! include: lib/check_name.lua
--! include: lib/msgpack_check.lua
--! include: lib/finite_floats.lua
-- check_feature(name, value, max_bytes) -> nothing, or FSVALIDATION unless (name, value) can be
-- stored and read back by every client:
-- Names: as check_name.lua.
-- Values: non-empty, at most max_bytes, and either exactly one msgpack object of the kinds
-- msgpack_check takes, no map, lists only of scalars (floats finite, strings UTF-8), or a tagged
-- blob: "\xC1e4\0" + float32 LE, "\xC1e2\0" + float16 LE (all finite), "\xC1t\0\0" + int64 LE
-- microseconds.
local function check_feature(name, value, max_bytes)
  check_name(name)
  local size = #value
  if size == 0 then reject(name, 'encoding', 'the value is empty') end
  if size > max_bytes then
    reject(name, 'size', 'the value is ' .. size .. ' bytes, more than the limit of ' .. max_bytes)
  end
  local first = string.byte(value, 1)
  if first == 0xCB and size == 9 then  -- a float64, the most common value: finite unless all exponent bits are set
    local e1, e2 = string.byte(value, 2, 3)
    if e1 % 128 ~= 127 or e2 < 240 then return end
  end
  if first == 0xC1 then
    local tag = string.sub(value, 2, 4)
    local width = (tag == 'e4\0' and 4) or (tag == 'e2\0' and 2) or nil
    if width then
      if size <= 4 or (size - 4) % width ~= 0 then reject(name, 'encoding', 'the embedding is truncated') end
      if not finite_floats(value, width) then reject(name, 'finite', 'the embedding holds NaN or infinity') end
    elseif tag ~= 't\0\0' or size ~= 12 then
      reject(name, 'encoding', 'unknown or truncated tagged value')
    end
    return
  end
  local after, why = msgpack_check(value, 1, 1, false)
  if not after then
    local rule = (why == 'NaN and infinity are not stored' and 'finite') or (why == 'integers beyond int64 are not stored' and 'range') or 'encoding'
    reject(name, rule, why)
  end
  if after <= size then reject(name, 'encoding', 'the value is not exactly one msgpack object') end
end
