--! include: lib/limits.lua
-- index_header(raw) -> how the version index `raw` (field "<name>#") begins: the length of its
-- header, its top (the highest version the feature has had) and its cut (the newest event time
-- among the versions cut from the index; -2^47 while none was). A 12-byte header holds both
-- (int48 top | int48 cut); an index written before indexes kept the cut has a 6-byte header (int48
-- top) and the cut is nil (see index_cut). After the header, 30 bytes per version. nil when `raw`
-- has neither shape or more than LIMITS.max_versions entries.
local function index_header(raw)
  local size = #raw
  local header = size % 30
  if (header ~= 12 and header ~= 6) or size > header + 30 * LIMITS.max_versions then return nil end
  if header == 6 then return 6, (struct.unpack('<i6', raw)), nil end
  local top, cut = struct.unpack('<i6i6', raw)
  return 12, top, cut
end
