--! include: lib/fail.lua
-- reject(name, rule, text): refuse a write with "FSVALIDATION feature=<name> rule=<rule> <text>".
local function reject(name, rule, text)
  fail('FSVALIDATION', 'feature=' .. name .. ' rule=' .. rule .. ' ' .. text)
end
