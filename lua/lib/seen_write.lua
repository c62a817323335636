-- seen_write(log, digest) -> true when `digest` (16 hex characters of the SHA-1 of a write id) is
-- one of the entries of the entity's write log (field "#w": 22 bytes per entry, the digest then an
-- int48 LE time ms). A match must start an entry; the loop ends within #log steps.
local function seen_write(log, digest)
  if not log or #log % 22 ~= 0 then return false end
  local from = 1
  while true do
    local at = string.find(log, digest, from, true)
    if not at then return false end
    if (at - 1) % 22 == 0 then return true end
    from = at + 1
  end
end
