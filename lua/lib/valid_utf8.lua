-- valid_utf8(s, from, to) -> whether bytes from..to of s are UTF-8 as Python's strict decoder
-- takes it (no overlong forms, no surrogates, nothing past U+10FFFF). ASCII runs are skipped
-- with one string.find; the loop advances at least one byte a turn, so it ends.
local function valid_utf8(s, from, to)
  local byte, find = string.byte, string.find
  local i = from
  while i <= to do
    i = find(s, '[\128-\255]', i)
    if i == nil or i > to then return true end
    local c = byte(s, i)
    local n
    local low, high = 0x80, 0xBF
    if c >= 0xC2 and c <= 0xDF then n = 1
    elseif c >= 0xE0 and c <= 0xEF then
      n = 2
      if c == 0xE0 then low = 0xA0 elseif c == 0xED then high = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      n = 3
      if c == 0xF0 then low = 0x90 elseif c == 0xF4 then high = 0x8F end
    else
      return false
    end
    if i + n > to then return false end
    local c2 = byte(s, i + 1)
    if c2 < low or c2 > high then return false end
    for j = i + 2, i + n do
      local cj = byte(s, j)
      if cj < 0x80 or cj > 0xBF then return false end
    end
    i = i + n + 1
  end
  return true
end
