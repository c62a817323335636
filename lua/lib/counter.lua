--! include: lib/limits.lua
-- counter(text) -> the version counter stored in `text` (a history field "<name>" or "#keep"):
-- 0 when absent, the integer when it is decimal digits up to LIMITS.version, nil when it is
-- anything else (written around the library: "inf" or "0x10" would make a loop endless).
local function counter(text)
  if not text then return 0 end
  if #text > 16 or not string.find(text, '^%d+$') then return nil end
  local n = tonumber(text)
  if n > LIMITS.version then return nil end
  return n
end
