-- retire_value(values_key, history_key, name, version): the value of `name` in values_key is about
-- to stop being current; copy it into the tail of its history record "<name>#<version>".
-- Records hold no value while current (the value lives once, in values_key), so this runs once
-- per version: on overwrite, on expiry purge, and on delete of a still-live feature.
local function retire_value(values_key, history_key, name, version)
  local field = name .. '#' .. version
  local record = redis.call('HGET', history_key, field)
  if record then
    local value = redis.call('HGET', values_key, name)
    if value then redis.call('HSET', history_key, field, record .. value) end
  end
end
