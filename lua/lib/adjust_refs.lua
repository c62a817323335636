-- adjust_refs(key, deltas): add deltas[seq] (negative: versions that stopped pointing at it) to the
-- reference count of record "#<seq>", deleting the records no version points at any more.
-- Sequence numbers in ascending order, so replicas and the AOF see the same commands.
local function adjust_refs(key, deltas)
  local rcall = redis.call
  local seqs = {}
  for seq, delta in pairs(deltas) do
    if seq > 0 and delta ~= 0 then seqs[#seqs + 1] = seq end
  end
  table.sort(seqs)
  for _, seq in ipairs(seqs) do
    local field = string.format('#%d', seq)
    local raw = rcall('HGET', key, field)
    if raw and #raw >= 4 then
      local refs = struct.unpack('<I4', raw) + deltas[seq]
      if refs <= 0 then
        rcall('HDEL', key, field)
      else
        rcall('HSET', key, field, struct.pack('<I4', refs) .. string.sub(raw, 5))
      end
    end
  end
end
