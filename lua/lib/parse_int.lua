--! include: lib/fail.lua
-- parse_int(text, what, min, max) -> the integer written in `text` (decimal digits, an optional
-- '-'; no spaces, exponents, hex or fractions), or FSARG naming `what` when it is not one, or lies
-- outside [min, max].
local function parse_int(text, what, min, max)
  if type(text) ~= 'string' or #text > 17 or not string.find(text, '^%-?%d+$') then
    fail('FSARG', what .. ' must be an integer from ' .. min .. ' to ' .. max .. ', got ' .. tostring(text))
  end
  local n = tonumber(text)
  if n < min or n > max then
    fail('FSARG', what .. ' must be an integer from ' .. min .. ' to ' .. max .. ', got ' .. text)
  end
  return n
end
