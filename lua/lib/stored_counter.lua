--! include: lib/fail.lua
--! include: lib/counter.lua
-- stored_counter(name, text) -> the version counter of feature `name` read from `text` (0 when
-- absent), or FSCORRUPT feature=<name> rule=counter when it is not a number (see counter.lua).
-- Callers read it before their first write, so a refusal changes nothing.
local function stored_counter(name, text)
  local n = counter(text)
  if not n then fail('FSCORRUPT', 'feature=' .. name .. ' rule=counter the version counter is not a number') end
  return n
end
