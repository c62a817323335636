--! include: lib/fail.lua
-- append_log(log, key, now, event, write_id, meta, fields) -> nothing: the change-log entry of
-- one write of entity `key` added to the stream `log` (docs/storage_format.md, "Change log"):
--   "#"   int48 server time ms | int48 event time ms (12 bytes)
--   "#k"  the entity key;  "#w" the write id ('' for none);  "#m" the meta (msgpack map)
--   then `fields`: for each new version, its name and the version as a current value is stored
--   (a 24-byte head: int48 expiry ms, event ms, version, record; then the encoded value); for a
--   deleted feature, its name and '' (lua/fs_delete.lua).
-- A write of more than 2,000 features takes an entry per 2,000, each with the same header (XADD
-- takes its arguments through unpack(), which fails near 8,000).
-- Callers append before their first other write: when `log` holds another type than a stream,
-- the first XADD fails (FSARG) and nothing is written. That saves a TYPE per write.
local function append_log(log, key, now, event, write_id, meta, fields)
  local header = struct.pack('<i6i6', now, event)
  for i = 1, #fields, 4000 do
    local ok, err = pcall(redis.call, 'XADD', log, '*', '#', header, '#k', key, '#w', write_id, '#m', meta,
      unpack(fields, i, math.min(i + 3999, #fields)))
    if not ok then
      fail('FSARG', 'the change log ' .. log .. ' refused the entry (it is not an fsredis change log): ' .. tostring(err.err or err))
    end
  end
end
