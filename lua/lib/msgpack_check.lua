--! include: lib/valid_utf8.lua
-- msgpack_check(s, pos, depth, maps) -> the position after the msgpack object that starts at byte
-- `pos` of `s`, or nil and why it is not one that fsredis stores:
--   nil, true, false, integers, finite floats (float32 or float64), UTF-8 strings, arrays of at
--   most `depth` levels, and maps with string keys only when `maps` is true.
-- Refused: bin, ext and the never-used byte 0xC1, NaN and infinities, invalid UTF-8, unsigned
-- integers of 2^63 and more (Lua's cmsgpack reads them as negative numbers), anything truncated. Every array or map header is checked against the bytes left before its items are
-- walked, so the work is bounded by #s.
local function msgpack_check(s, pos, depth, maps)
  local b = string.byte(s, pos)
  if b == nil then return nil, 'it is truncated' end
  if b <= 0x7F or b >= 0xE0 or b == 0xC0 or b == 0xC2 or b == 0xC3 then return pos + 1 end
  local size = #s
  local len, head
  if b >= 0xA0 and b <= 0xBF then len, head = b - 0xA0, 1
  elseif b == 0xD9 then len, head = string.byte(s, pos + 1), 2
  elseif b == 0xDA and pos + 2 <= size then len, head = struct.unpack('>I2', s, pos + 1), 3
  elseif b == 0xDB and pos + 4 <= size then len, head = struct.unpack('>I4', s, pos + 1), 5
  end
  if head then  -- a string
    if len == nil or pos + head + len - 1 > size then return nil, 'a string is truncated' end
    if not valid_utf8(s, pos + head, pos + head + len - 1) then return nil, 'a string is not valid UTF-8' end
    return pos + head + len
  end
  if b >= 0xCC and b <= 0xD3 then  -- uint8..64, int8..64
    local width = ({1, 2, 4, 8})[(b - 0xCC) % 4 + 1]
    if pos + width > size then return nil, 'an integer is truncated' end
    if b == 0xCF and string.byte(s, pos + 1) >= 0x80 then return nil, 'integers beyond int64 are not stored' end
    return pos + 1 + width
  end
  if b == 0xCA or b == 0xCB then
    local width = b == 0xCA and 4 or 8
    if pos + width > size then return nil, 'a float is truncated' end
    local e1, e2 = string.byte(s, pos + 1, pos + 2)
    local top = b == 0xCA and 0x80 or 0xF0
    if bit.band(e1, 0x7F) == 0x7F and bit.band(e2, top) == top then return nil, 'NaN and infinity are not stored' end
    return pos + 1 + width
  end
  local count, is_map
  if b >= 0x90 and b <= 0x9F then count, head = b - 0x90, 1
  elseif b == 0xDC and pos + 2 <= size then count, head = struct.unpack('>I2', s, pos + 1), 3
  elseif b == 0xDD and pos + 4 <= size then count, head = struct.unpack('>I4', s, pos + 1), 5
  elseif b >= 0x80 and b <= 0x8F then count, head, is_map = b - 0x80, 1, true
  elseif b == 0xDE and pos + 2 <= size then count, head, is_map = struct.unpack('>I2', s, pos + 1), 3, true
  elseif b == 0xDF and pos + 4 <= size then count, head, is_map = struct.unpack('>I4', s, pos + 1), 5, true
  end
  if not head then
    if b >= 0xD9 and b <= 0xDF then return nil, 'a header is truncated' end
    return nil, 'it holds a msgpack type fsredis does not store (bin, ext or 0xC1)'
  end
  if is_map and not maps then return nil, 'maps are not feature values' end
  if depth < 1 then return nil, 'lists and maps nest deeper than allowed' end
  local items = is_map and count * 2 or count
  if pos + head + items - 1 > size then return nil, 'a list or map is truncated' end
  local at, why = pos + head
  for i = 1, items do
    if is_map and i % 2 == 1 then
      local k = string.byte(s, at)
      if k == nil then return nil, 'a map is truncated' end
      if not ((k >= 0xA0 and k <= 0xBF) or (k >= 0xD9 and k <= 0xDB)) then return nil, 'map keys are strings' end
    end
    at, why = msgpack_check(s, at, depth - 1, maps)
    if not at then return nil, why end
  end
  return at
end
