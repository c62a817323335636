-- call_chunked(command, key, args) -> the summed integer replies of `command key <args...>`, sent in
-- chunks of at most 1,000 arguments (Lua's unpack() fails near 8,000). For HSET pass field/value
-- pairs: chunks stay even, so pairs are never split.
local function call_chunked(command, key, args)
  local total = 0
  for i = 1, #args, 1000 do
    total = total + redis.call(command, key, unpack(args, i, math.min(i + 999, #args)))
  end
  return total
end
