--! include: lib/limits.lua
-- parse_ttl(value) -> `value` when it is a TTL in ms: -1 (never expires) or an integer from 1 to
-- LIMITS.ttl_ms (100 years); else nil.
local function parse_ttl(value)
  if type(value) ~= 'number' or value ~= math.floor(value) then return nil end
  if value == -1 or (value >= 1 and value <= LIMITS.ttl_ms) then return value end
  return nil
end
