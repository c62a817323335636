-- seen_write(writes_key, write_id) -> true when this write id was already applied to the entity.
local function seen_write(writes_key, write_id)
  return redis.call('ZSCORE', writes_key, write_id) ~= false
end
