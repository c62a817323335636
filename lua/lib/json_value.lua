--! include: lib/iso8601.lua
-- json_value(value) -> an encoded value (docs/storage_format.md, "Values") as cjson can show it:
-- scalars and lists as they are (nil as cjson.null), a timestamp as ISO 8601 text, an embedding
-- summarised as {dtype, dim, norm, head = its first 8 values}. For people at redis-cli: numbers
-- print with 14 significant digits (cjson), integers beyond 2^53 approximately. An empty list is
-- the string '\1[]' (cjson would print an empty table as {}): the caller replaces it.
local function json_value(value)
  local b = string.byte(value, 1)
  if b == 0xC1 then
    local tag = string.sub(value, 2, 4)
    if tag == 't\0\0' then
      local low, high = struct.unpack('<I4i4', value, 5)
      return iso8601(math.floor((high * 4294967296 + low) / 1000))
    end
    local size = tag == 'e4\0' and 4 or 2
    local dim = (#value - 4) / size
    local head, sum = {}, 0
    for i = 1, dim do
      local x
      if size == 4 then
        x = struct.unpack('<f', value, 5 + 4 * (i - 1))
      else  -- float16: sign, 5 exponent bits, 10 mantissa bits
        local h = struct.unpack('<I2', value, 5 + 2 * (i - 1))
        local sign, exp, frac = h >= 32768 and -1 or 1, math.floor(h / 1024) % 32, h % 1024
        if exp == 0 then x = sign * frac * 2 ^ -24 else x = sign * (1 + frac / 1024) * 2 ^ (exp - 15) end
      end
      sum = sum + x * x
      if i <= 8 then head[i] = x end
    end
    return {dtype = size == 4 and 'float32' or 'float16', dim = dim, norm = math.sqrt(sum), head = head}
  end
  local decoded = cmsgpack.unpack(value)
  if decoded == nil then return cjson.null end
  if type(decoded) == 'table' then  -- a list (values hold no maps): its nils were holes
    if next(decoded) == nil and b == 0x90 then return '\1[]' end
    local count = b - 0x90  -- fixarray, else the array 16/32 header
    if b == 0xDC then count = struct.unpack('>I2', value, 2) end
    if b == 0xDD then count = struct.unpack('>I4', value, 2) end
    for i = 1, count do
      if decoded[i] == nil then decoded[i] = cjson.null end
    end
  end
  return decoded
end
