--! include: lib/fail.lua
-- parse_int(text, what, min, max) -> the integer written in `text` (decimal digits, an optional
-- '-'; no spaces, exponents, hex or fractions), or FSARG naming `what` when it is not one, or lies
-- outside [min, max].
local function parse_int(text, what, min, max)
  local n = type(text) == 'string' and #text <= 17 and string.find(text, '^%-?%d+$') and tonumber(text)
  if not n or n < min or n > max then
    fail('FSARG', string.format('%s must be an integer from %.0f to %.0f, got %s', what, min, max,
      string.sub(tostring(text), 1, 32)))
  end
  return n
end
