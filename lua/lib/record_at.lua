--! include: lib/read_record.lua
-- record_at(key, seq, records) -> the record "#<seq>" of the entity taken apart (read_record), or
-- false when it is missing or damaged; `records` caches what was read (seq -> the same).
local function record_at(key, seq, records)
  local rec = records[seq]
  if rec == nil then
    rec = read_record(redis.call('HGET', key, string.format('#%d', seq))) or false
    records[seq] = rec
  end
  return rec
end
