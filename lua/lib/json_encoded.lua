--! include: lib/reject.lua
-- json_encoded(name, v, rules) -> the encoded value (docs/storage_format.md, "Values") of a value
-- `v` decoded from JSON (cjson) for feature `name` with registered `rules` (or nil): null as
-- msgpack nil; for a registered embedding, an array of numbers as a float32 embedding; for a
-- registered timestamp, a number of seconds since the epoch as a timestamp; anything else as
-- msgpack, as the client packs it. The value then goes through every check of a write
-- (parse_features). FSVALIDATION rule=dtype for a float16 embedding (write those with a client).
local function json_encoded(name, v, rules)
  if v == cjson.null then return '\192' end
  local dtype = rules and rules.t
  if dtype == 'embedding' and type(v) == 'table' then
    if rules.tag ~= '\193e4\0' then
      reject(name, 'dtype', 'fs_put writes float32 embeddings; this one is float16: write it with a client')
    end
    local parts = {'\193e4\0'}
    for i = 1, #v do
      if type(v[i]) ~= 'number' then reject(name, 'dtype', 'an embedding is an array of numbers') end
      parts[i + 1] = struct.pack('<f', v[i])
    end
    return table.concat(parts)
  end
  if dtype == 'timestamp' and type(v) == 'number' then
    local micros = math.floor(v * 1000000 + 0.5)
    local low = micros % 4294967296
    return '\193t\0\0' .. struct.pack('<I4i4', low, (micros - low) / 4294967296)
  end
  if type(v) == 'table' and (#v > 0 or next(v) == nil) then  -- an array: packed item by item (null: nil)
    local n = #v
    local parts = {n < 16 and string.char(0x90 + n) or n < 65536 and '\220' .. struct.pack('>I2', n)
                   or '\221' .. struct.pack('>I4', n)}
    for i = 1, n do parts[i + 1] = v[i] == cjson.null and '\192' or cmsgpack.pack(v[i]) end
    return table.concat(parts)
  end
  return cmsgpack.pack(v)  -- (a JSON object packs as a map, which the checks refuse)
end
