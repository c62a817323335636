--! include: lib/retire_value.lua
--! include: lib/drop_history.lua
-- put_feature(k, name, value, expires_at, now, max_versions, write_id, meta) -> the new version.
-- k = {values, expiry, history, writes} keys of the entity. Versions come from HINCRBY on the
-- history hash field <name>, so they are 1, 2, 3, ... with no gap or repeat. When max_versions > 0
-- a record "<name>#<version>" is added:
--   uint32 LE n | msgpack [version, now_ms, write_id, expires_at_ms or -1] | meta (n bytes in all
--   for the two msgpack parts) | the value, appended once the version is no longer current.
-- Records older than the newest max_versions are deleted.
local function put_feature(k, name, value, expires_at, now, max_versions, write_id, meta)
  local rcall = redis.call
  local version = rcall('HINCRBY', k[3], name, 1)
  if max_versions > 0 then
    retire_value(k[1], k[3], name, version - 1)
    local head = cmsgpack.pack({version, now, write_id, expires_at}) .. meta
    rcall('HSET', k[3], name .. '#' .. version, struct.pack('<I4', #head) .. head)
    drop_history(k[3], name, version - max_versions)
  end
  rcall('HSET', k[1], name, value)
  if expires_at > 0 then
    rcall('HSET', k[2], name, expires_at)
  else
    rcall('HDEL', k[2], name)
  end
  return version
end
