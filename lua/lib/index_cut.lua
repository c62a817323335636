--! include: lib/limits.lua
-- index_cut(top, entries, cur, cut) -> the newest event time among the versions of a feature that
-- are no longer kept, or -2^47 (below every event time) when none was cut. `cut` is the one the
-- index holds (index_header); nil for an index written before indexes kept it: then, when some
-- versions are missing (fewer kept than the highest version, `top`), the oldest event time kept
-- (LIMITS.time_ms when nothing is), on the assumption that the versions cut were written in event
-- time order. `entries` as read_index gives them, `cur` the current value (read_head) or false.
local function index_cut(top, entries, cur, cut)
  if cut then return cut end
  if math.max(top, cur and cur.v or 0) <= #entries + (cur and 1 or 0) then return -LIMITS.time_ms - 1 end
  local oldest = cur and cur.e or LIMITS.time_ms
  for i = 1, #entries do
    if entries[i][2] < oldest then oldest = entries[i][2] end
  end
  return oldest
end
