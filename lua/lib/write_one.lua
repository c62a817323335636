--! include: lib/now_ms.lua
--! include: lib/read_entity.lua
--! include: lib/seen_write.lua
--! include: lib/write_digest.lua
--! include: lib/apply_write.lua
-- write_one(key, absent, o, meta, names, values, ttls) -> {1, version of each name} or {0} when
-- the write id was already applied: the write of fs_write and fs_put once its arguments are
-- parsed (parse_options, parse_meta, parse_features; `absent` from parse_entity_key). Reads the
-- entity (read_entity checks its stored fields), then applies (apply_write).
local function write_one(key, absent, o, meta, names, values, ttls)
  local now = now_ms()
  local st = read_entity(key, names, now, absent)
  -- Everything is checked: from here on, apply.
  o.digest = write_digest(o.id)
  if o.dedup_ms > 0 and seen_write(st.log, o.digest) then
    -- Applied before: nothing changes, but the log is written again as it is, so that a WAIT after
    -- this call (min_replicas) waits for the first application too (a retry after a lost reply).
    redis.call('HSET', key, '#w', st.log)
    return {0}
  end
  local versions = apply_write(key, st, names, values, ttls, o, meta, now)
  table.insert(versions, 1, 1)
  return versions
end
