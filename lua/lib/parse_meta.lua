--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/msgpack_check.lua
-- parse_meta(arg) -> the lineage map of a write call decoded, and as the msgpack bytes to store.
-- An empty (or missing) argument stands for an empty map, so a shell user can leave it out.
-- Anything but exactly one msgpack map with string keys, of at most LIMITS.meta_bytes, nested at
-- most LIMITS.depth deep, of the kinds msgpack_check takes, raises FSARG.
local function parse_meta(arg)
  local packed = arg
  if packed == nil or packed == '' then packed = '\128' end
  if #packed > LIMITS.meta_bytes then fail('FSARG', 'meta is larger than ' .. LIMITS.meta_bytes .. ' bytes') end
  local b = string.byte(packed, 1)
  if not ((b >= 0x80 and b <= 0x8F) or b == 0xDE or b == 0xDF) then fail('FSARG', 'meta is not a msgpack map') end
  local after, why = msgpack_check(packed, 1, LIMITS.depth, true)
  if not after then fail('FSARG', 'meta: ' .. why) end
  if after <= #packed then fail('FSARG', 'meta is not exactly one msgpack map') end
  return cmsgpack.unpack(packed), packed
end
