--! include: lib/read_call.lua
-- hmget_many(key, fields) -> HMGET of fields ({} for none); in chunks when there are more than
-- 1,000 of them, since Lua's unpack() fails near 8,000 values. FSARG when key is not a hash.
local function hmget_many(key, fields)
  if #fields == 0 then return {} end
  if #fields <= 1000 then return read_call('HMGET', key, unpack(fields)) end
  local out = {}
  for i = 1, #fields, 1000 do
    local part = read_call('HMGET', key, unpack(fields, i, math.min(i + 999, #fields)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end
