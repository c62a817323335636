-- finite_floats(blob, width) -> whether the little-endian floats after the 4-byte tag of an
-- embedding blob (width 4: float32, 2: float16) are all finite. A float is NaN or infinite when its
-- exponent bits are all ones; a pattern finds candidate byte pairs and only those at a float's top
-- bytes count, so a finite embedding costs a few string.find calls, not one step per value.
local function finite_floats(blob, width)
  local pattern, offset
  if width == 4 then
    pattern, offset = '[\128-\255][\127\255]', 2  -- byte 3 >= 0x80 and byte 4 = 0x7F|0xFF
  else
    pattern, offset = '[\124-\127\252-\255]', 1   -- the high byte's exponent bits 0x7C
  end
  local at = 5
  while true do
    at = string.find(blob, pattern, at)
    if at == nil then return true end
    if (at - 5) % width == offset then return false end
    at = at + 1
  end
end
