-- pack_index(counter, entries) -> the field "<name>#" as read_index reads it.
local function pack_index(counter, entries)
  local parts = {struct.pack('<i6', counter)}
  for i = 1, #entries do
    local e = entries[i]
    parts[i + 1] = struct.pack('<i6i6i6i6i6', e[1], e[2], e[3], e[4], e[5])
  end
  return table.concat(parts)
end
