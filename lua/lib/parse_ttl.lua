--! include: lib/reject.lua
--! include: lib/limits.lua
-- parse_ttl(name, text) -> the TTL of feature `name` in ms (-1: never expires) and whether it is
-- the caller's default ("d" + ms, which a registered TTL replaces). FSVALIDATION rule=ttl unless
-- the text is -1 or an integer from 1 to LIMITS.ttl_ms (100 years).
local function parse_ttl(name, text)
  local default = string.byte(text, 1) == 100  -- 'd'
  local digits = default and string.sub(text, 2) or text
  local ms = #digits <= 17 and string.find(digits, '^%-?%d+$') and tonumber(digits)
  if not ms or ms == 0 or ms < -1 or ms > LIMITS.ttl_ms then
    reject(name, 'ttl', 'the TTL must be -1 (never) or 1 to ' .. LIMITS.ttl_ms .. ' ms, got ' .. string.sub(text, 1, 32))
  end
  return ms, default
end
