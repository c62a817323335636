--! include: lib/fail.lua
-- to_int(text, what, min) -> the integer in `text`, or FSARG when it is not an integer >= min.
local function to_int(text, what, min)
  local n = tonumber(text)
  if n == nil or n ~= math.floor(n) or n < min then
    fail('FSARG', what .. ' must be an integer >= ' .. min .. ', got ' .. tostring(text))
  end
  return n
end
