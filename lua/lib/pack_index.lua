-- pack_index(top, entries, cut) -> the field "<name>#" as read_index reads it (12-byte header).
local function pack_index(top, entries, cut)
  local parts = {struct.pack('<i6i6', top, cut)}
  for i = 1, #entries do
    local e = entries[i]
    parts[i + 1] = struct.pack('<i6i6i6i6i6', e[1], e[2], e[3], e[4], e[5])
  end
  return table.concat(parts)
end
