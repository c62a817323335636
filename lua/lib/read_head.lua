--! include: lib/fail.lua
-- read_head(name, raw) -> the current value of feature `name` as stored (field <name> of the
-- entity hash), taken apart: {x = expiry ms (0: none), e = event time ms, v = version,
-- s = sequence number of the write that made it (0: no record), raw = the field}, or nil when
-- absent. The value itself starts at byte 25 (docs/storage_format.md, "Current values").
-- FSCORRUPT feature=<name> rule=head when the field is too short to hold the 24-byte head.
local function read_head(name, raw)
  if not raw then return nil end
  if #raw < 25 then
    fail('FSCORRUPT', 'feature=' .. name .. ' rule=head the stored value is not an fsredis value (written around the library?)')
  end
  local x, e, v, s = struct.unpack('<i6i6i6i6', raw)
  return {x = x, e = e, v = v, s = s, raw = raw}
end
