--! include: lib/fail.lua
--! include: lib/limits.lua
-- read_head(name, raw) -> the current value of feature `name` as stored (field <name> of the
-- entity hash), taken apart: {x = expiry ms (0: none), e = event time ms, v = version,
-- s = sequence number of the write that made it (0: no record), raw = the field}, or nil when
-- absent. The value itself starts at byte 25 (docs/storage_format.md, "Current values").
-- FSCORRUPT feature=<name> rule=head when the field is too short to hold the 24-byte head, or
-- its version or record number is out of range (below 1 or 0, or at LIMITS.version: no write
-- could follow it).
local function read_head(name, raw)
  if not raw then return nil end
  if #raw < 25 then
    fail('FSCORRUPT', 'feature=' .. name .. ' rule=head the stored value is not an fsredis value (written around the library?)')
  end
  local x, e, v, s = struct.unpack('<i6i6i6i6', raw)
  if v < 1 or v >= LIMITS.version or s < 0 or s >= LIMITS.version then
    fail('FSCORRUPT', 'feature=' .. name .. ' rule=head the version or record number of the stored value is out of range')
  end
  return {x = x, e = e, v = v, s = s, raw = raw}
end
