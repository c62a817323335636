--! include: lib/fail.lua
-- read_meta(arg) -> the lineage map of a write call decoded, and as the msgpack bytes to store.
-- An empty (or missing) argument stands for an empty map, so a shell user can leave it out;
-- anything that is not msgpack of a table raises FSARG.
local function read_meta(arg)
  local packed = arg
  if packed == nil or packed == '' then packed = '\128' end
  local ok, decoded = pcall(cmsgpack.unpack, packed)
  if not ok or type(decoded) ~= 'table' then fail('FSARG', 'meta is not a msgpack map') end
  return decoded, packed
end
