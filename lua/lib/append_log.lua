-- append_log(log, key, now, event, write_id, meta, names, values, heads) -> nothing: the
-- change-log entry of one write of entity `key` added to the stream `log` (docs/storage_format.md,
-- "Change log"):
--   "#"   int48 server time ms | int48 event time ms (12 bytes)
--   "#k"  the entity key;  "#w" the write id ('' for none);  "#m" the meta (msgpack map)
--   "#v"  per feature below, in their order: int48 version | int48 expiry ms (0: never)
--   then each feature's name and its encoded value ('' for a deleted feature, lib/fs_delete.lua).
-- `heads` holds the version, expiry pairs (nil for a delete: no "#v"). A write of more than
-- 2,000 features takes an entry per 2,000, each with the same header (XADD takes its arguments
-- through unpack(), which fails near 8,000).
local function append_log(log, key, now, event, write_id, meta, names, values, heads)
  local header = struct.pack('<i6i6', now, event)
  for first = 1, #names, 2000 do
    local last = math.min(first + 1999, #names)
    local args, k = {log, '*', '#', header, '#k', key, '#w', write_id, '#m', meta}, 10
    if heads then
      args[11], args[12] = '#v', struct.pack(string.rep('i6i6', last - first + 1), unpack(heads, 2 * first - 1, 2 * last))
      k = 12
    end
    for i = first, last do
      args[k + 1], args[k + 2] = names[i], values[i]
      k = k + 2
    end
    redis.call('XADD', unpack(args, 1, k))
  end
end
