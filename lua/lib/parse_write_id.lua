--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/valid_utf8.lua
-- parse_write_id(text) -> `text` when it can be a write id: 1 to LIMITS.write_id_bytes bytes of
-- UTF-8 (lineage returns it as text); else FSARG.
local function parse_write_id(text)
  if text == nil or #text == 0 or #text > LIMITS.write_id_bytes or not valid_utf8(text, 1, #text) then
    fail('FSARG', 'the write id must be 1-' .. LIMITS.write_id_bytes .. ' bytes of UTF-8')
  end
  return text
end
