--! include: lib/fail.lua
--! include: lib/limits.lua
-- read_index(name, raw) -> the version counter of feature `name` and its history entries (field
-- "<name>#"), oldest version first: {version, event ms, expiry ms (0: none), seq of the record
-- that made it, seq of the record that holds its value}. 0, {} when absent.
-- Layout: int48 counter, then 30 bytes per entry (five int48 LE).
-- FSCORRUPT feature=<name> rule=index when the field does not have that shape.
local function read_index(name, raw)
  if not raw then return 0, {} end
  local n = (#raw - 6) / 30
  if n < 0 or n ~= math.floor(n) or n > LIMITS.max_versions then
    fail('FSCORRUPT', 'feature=' .. name .. ' rule=index the version index is not an fsredis index')
  end
  local counter, pos = struct.unpack('<i6', raw)
  local entries = {}
  for i = 1, n do
    local v, e, x, c, h
    v, e, x, c, h, pos = struct.unpack('<i6i6i6i6i6', raw, pos)
    entries[i] = {v, e, x, c, h}
  end
  return counter, entries
end
