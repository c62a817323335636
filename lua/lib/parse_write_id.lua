--! include: lib/fail.lua
--! include: lib/limits.lua
-- parse_write_id(text) -> `text` when it can be a write id: 1 to LIMITS.write_id_bytes bytes;
-- else FSARG.
local function parse_write_id(text)
  if text == nil or #text == 0 or #text > LIMITS.write_id_bytes then
    fail('FSARG', 'the write id must be 1-' .. LIMITS.write_id_bytes .. ' bytes')
  end
  return text
end
