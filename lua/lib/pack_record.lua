-- pack_record(refs, time, write_id, meta, names, values) -> the record of one write (field
-- "#<seq>"): uint32 refs | int48 time ms | uint16 w | write id (w bytes) | uint32 m | meta (m
-- bytes, msgpack map) | uint32 count | count x (uint8 n | name (n bytes) | uint32 size | value).
-- The values are those of versions this write moved to history; `false` (size 0xFFFFFFFF, no
-- bytes) marks a value equal to the one this write stored for the same feature.
-- refs counts the versions that point at the record (made by it, or with their value in it).
local function pack_record(refs, time, write_id, meta, names, values)
  local parts = {struct.pack('<I4i6I2', refs, time, #write_id), write_id, struct.pack('<I4', #meta), meta,
    struct.pack('<I4', #names)}
  for i = 1, #names do
    local value = values[i]
    parts[#parts + 1] = struct.pack('<I1', #names[i]) .. names[i]
    if value then
      parts[#parts + 1] = struct.pack('<I4', #value)
      parts[#parts + 1] = value
    else
      parts[#parts + 1] = '\255\255\255\255'
    end
  end
  return table.concat(parts)
end
