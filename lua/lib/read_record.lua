--! include: lib/limits.lua
-- read_record(raw) -> a record as pack_record wrote it: {refs, time, write_id, meta,
-- held = {name -> value, or true for "equal to the value this write stored"}}, or nil when
-- `raw` is not one (a damaged record). Bounded by the bytes of `raw`.
local function read_record(raw)
  if not raw or #raw < 20 then return nil end
  local size = #raw
  local refs, time, w, pos = struct.unpack('<I4i6I2', raw)
  if pos + w + 4 > size + 1 then return nil end
  local write_id = string.sub(raw, pos, pos + w - 1)
  local m = struct.unpack('<I4', raw, pos + w)
  pos = pos + w + 4
  if pos + m + 4 > size + 1 then return nil end
  local meta = string.sub(raw, pos, pos + m - 1)
  local count = struct.unpack('<I4', raw, pos + m)
  pos = pos + m + 4
  if count > LIMITS.names then return nil end
  local held = {}
  for _ = 1, count do
    if pos > size then return nil end
    local n = string.byte(raw, pos)
    if pos + n + 4 > size then return nil end
    local name = string.sub(raw, pos + 1, pos + n)
    local length = struct.unpack('<I4', raw, pos + n + 1)
    pos = pos + n + 5
    if length == 4294967295 then
      held[name] = true
    else
      if pos + length > size + 1 then return nil end
      held[name] = string.sub(raw, pos, pos + length - 1)
      pos = pos + length
    end
  end
  if pos ~= size + 1 then return nil end
  return {refs = refs, time = time, write_id = write_id, meta = meta, held = held}
end
