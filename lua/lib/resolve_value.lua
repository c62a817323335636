--! include: lib/fail.lua
--! include: lib/record_at.lua
-- resolve_value(key, name, cur, entries, version, records) -> the value of `version` of feature
-- `name` (bytes), or nil when that version is no longer kept. `cur` is the current value
-- (read_head) or false, `entries` the feature's history (read_index), `records` a cache of
-- records read so far (record_at). A value marked "equal to the value
-- this write stored" is that of the version the record's write made, which is newer: the walk
-- ends within #entries + 1 steps. FSCORRUPT feature=<name> rule=record when a record is missing
-- or damaged.
local function resolve_value(key, name, cur, entries, version, records)
  local function broken()
    fail('FSCORRUPT', 'feature=' .. name .. string.format(' rule=record the history record of version %d is missing or unreadable', version))
  end
  for _ = 1, #entries + 1 do
    if cur and cur.v == version then return string.sub(cur.raw, 25) end
    local held
    for _, entry in ipairs(entries) do
      if entry[1] == version then held = entry[5] break end
    end
    if not held then return nil end
    if held <= 0 then broken() end
    local rec = record_at(key, held, records)
    if not rec then broken() end
    local value = rec.held[name]
    if value == nil then broken() end
    if value ~= true then return value end
    local made = nil
    if cur and cur.s == held then
      made = cur.v
    else
      for _, entry in ipairs(entries) do
        if entry[4] == held then made = entry[1] end
      end
    end
    if not made or made <= version then broken() end
    version = made
  end
  broken()
end
