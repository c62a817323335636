-- hmget_many(key, fields, first) -> HMGET of fields[first..#fields], in chunks so that unpack()
-- never sees more than 1,000 values (Lua's stack limit is near 8,000).
local function hmget_many(key, fields, first)
  local out = {}
  local i = first
  while i <= #fields do
    local last = math.min(i + 999, #fields)
    local part = redis.call('HMGET', key, unpack(fields, i, last))
    for j = 1, #part do out[#out + 1] = part[j] end
    i = last + 1
  end
  return out
end
