--! include: lib/hmget_many.lua
--! include: lib/read_head.lua
--! include: lib/read_index.lua
--! include: lib/index_cut.lua
-- read_kept(key, names, fields) -> per name, in order, what the entity keeps of the feature:
-- {current value (read_head) or false, older versions (read_index), newest event time cut from
-- them (index_cut)}. `fields` lists each name and its index field in turn ({n1, "n1#", n2, ...}),
-- built once per call for all entities. FSCORRUPT as read_head and read_index; FSARG for a key of
-- another type (read_call).
local function read_kept(key, names, fields)
  local got, kept = hmget_many(key, fields), {}
  for i = 1, #names do
    local name = names[i]
    local cur = read_head(name, got[2 * i - 1]) or false
    local top, entries, cut = read_index(name, got[2 * i] or nil)
    kept[i] = {cur, entries, index_cut(top, entries, cur, cut)}
  end
  return kept
end
