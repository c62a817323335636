--! include: lib/fail.lua
--! include: lib/index_header.lua
-- read_index(name, raw) -> the top of feature `name` (its highest version), its history entries
-- (field "<name>#"), oldest version first: {version, event ms, expiry ms (0: none), seq of the
-- record that made it, seq of the record that holds its value}, and the index's cut (see
-- index_header; nil for an index of before cuts were kept). 0, {}, nil when absent.
-- Layout: the header (index_header), then 30 bytes per entry (five int48 LE).
-- FSCORRUPT feature=<name> rule=index when the field does not have that shape.
local function read_index(name, raw)
  if not raw then return 0, {}, nil end
  local header, counter, cut = index_header(raw)
  if not header then
    fail('FSCORRUPT', 'feature=' .. name .. ' rule=index the version index is not an fsredis index')
  end
  local entries, pos = {}, header + 1
  for i = 1, (#raw - header) / 30 do
    local v, e, x, c, h
    v, e, x, c, h, pos = struct.unpack('<i6i6i6i6i6', raw, pos)
    entries[i] = {v, e, x, c, h}
  end
  return counter, entries, cut
end
