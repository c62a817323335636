-- pack_record(refs, time, write_id, meta, names, values) -> the record of one write (field
-- "#<seq>"): uint32 refs | int48 time ms | uint16 w | write id (w bytes) | uint32 m | meta (m
-- bytes, msgpack map) | uint32 count | count x (uint8 n | name (n bytes) | uint32 size | value).
-- The values are those of versions this write moved to history; `false` (size 0xFFFFFFFF, no
-- bytes) marks a value equal to the one this write stored for the same feature.
-- refs counts the versions that point at the record (made by it, or with their value in it).
local function pack_record(refs, time, write_id, meta, names, values)
  local n = #names
  local parts = {struct.pack('<I4i6I2c0I4c0I4', refs, time, #write_id, write_id, #meta, meta, n)}
  for first = 1, n, 100 do  -- one struct.pack per 100 values (its arguments stay far below Lua's limit)
    local last = math.min(first + 99, n)
    local args, k = {}, 0
    for i = first, last do
      local name, value = names[i], values[i]
      args[k + 1], args[k + 2] = #name, name
      if value then
        args[k + 3], args[k + 4] = #value, value
      else
        args[k + 3], args[k + 4] = 4294967295, ''
      end
      k = k + 4
    end
    parts[#parts + 1] = struct.pack(string.rep('I1c0I4c0', last - first + 1), unpack(args, 1, k))
  end
  return table.concat(parts)
end
