-- value_kind(value) -> what an encoded value is, in the words of validation errors: 'null', 'int',
-- 'float', 'bool', 'string', 'list', 'map', 'a float32 embedding', 'a float16 embedding',
-- 'timestamp' or 'unknown' (from its first bytes: the msgpack type, or the 0xC1 tag).
local function value_kind(value)
  local b = string.byte(value, 1)
  if b == 0xC1 then
    local tag = string.sub(value, 2, 4)
    if tag == 'e4\0' then return 'a float32 embedding' end
    if tag == 'e2\0' then return 'a float16 embedding' end
    if tag == 't\0\0' then return 'timestamp' end
    return 'unknown'
  end
  if b <= 0x7F or b >= 0xE0 or (b >= 0xCC and b <= 0xD3) then return 'int' end
  if b == 0xCA or b == 0xCB then return 'float' end
  if b == 0xC2 or b == 0xC3 then return 'bool' end
  if b == 0xC0 then return 'null' end
  if (b >= 0xA0 and b <= 0xBF) or (b >= 0xD9 and b <= 0xDB) then return 'string' end
  if (b >= 0x90 and b <= 0x9F) or b == 0xDC or b == 0xDD then return 'list' end
  if (b >= 0x80 and b <= 0x8F) or b == 0xDE or b == 0xDF then return 'map' end
  return 'unknown'
end
