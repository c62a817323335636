--! include: lib/fail.lua
--! include: lib/msgpack_check.lua
--! include: lib/limits.lua
--! include: lib/parse_ttl.lua
--! include: lib/parse_write_id.lua
-- parse_options(arg, needs_id) -> the options of a writing call, ARGV[1]: a msgpack map (an empty
-- string: an empty map) with these string keys, each optional unless said:
--   id             the write id, 1-256 bytes of UTF-8 (required when `needs_id`)
--   event_time     integer ms since the epoch when the values were true; default: server time
--   max_versions   versions kept per feature, the current one included: 0-10,000 (default 10)
--   dedup_ms       how long a write id is remembered: 0 (never) to 7 days (default 300,000)
--   max_bytes      largest encoded value: 1 to 512 MiB (default 4 MiB)
--   ttl            ms (-1: never) for every feature of the call, or a map name -> ms; beats a
--                  registered TTL
--   scalar_ttl     ms (-1: never) for a scalar the call gives no ttl, unless the feature has a
--                  registered TTL (default -1)
--   embedding_ttl  the same for an embedding (default -1)
-- Anything else, or a value out of its bounds (lib/limits.lua), is FSARG; a bad TTL of the
-- ttl map is left to the feature's check (FSVALIDATION rule=ttl). The map is read by cmsgpack
-- (in pcall) and then every key and value is checked for its type: it is never stored. Unsigned
-- integers of 2^63 and more (read by cmsgpack as negative numbers) are refused first.
local OPTIONS = {id = 'string', event_time = 'number', max_versions = 'number', dedup_ms = 'number',
  max_bytes = 'number', ttl = 'any', scalar_ttl = 'number', embedding_ttl = 'number'}

local function parse_options(arg, needs_id)
  local packed = arg
  if packed == nil or packed == '' then packed = '\128' end
  local b = string.byte(packed, 1)
  if #packed > 65536 or not ((b >= 0x80 and b <= 0x8F) or b == 0xDE or b == 0xDF) then
    fail('FSARG', 'the options (ARGV[1]) are not a msgpack map of at most 64 KiB')
  end
  if string.find(packed, '\207', 1, true) then  -- maybe a uint64 >= 2^63, which cmsgpack reads as negative
    local after, why = msgpack_check(packed, 1, 2, true)
    if not after or after <= #packed then fail('FSARG', 'the options (ARGV[1]) are not one msgpack map: ' .. (why or 'trailing bytes')) end
  end
  local ok, o, extra = pcall(cmsgpack.unpack, packed)
  if not ok or type(o) ~= 'table' or extra ~= nil then fail('FSARG', 'the options (ARGV[1]) are not one msgpack map') end
  for key, value in pairs(o) do
    local kind = OPTIONS[key]
    if not kind then fail('FSARG', 'unknown option ' .. string.sub(tostring(key), 1, 64)) end
    if kind ~= 'any' and type(value) ~= kind then fail('FSARG', 'option ' .. key .. ' must be a ' .. kind) end
  end
  local function int(key, lo, hi, default)
    local value = o[key]
    if value == nil then return default end
    if value ~= math.floor(value) or value < lo or value > hi then
      fail('FSARG', string.format('option %s must be an integer from %.0f to %.0f', key, lo, hi))
    end
    return value
  end
  if o.id ~= nil or needs_id then o.id = parse_write_id(o.id) end
  if o.event_time ~= nil then o.event_time = int('event_time', -LIMITS.time_ms, LIMITS.time_ms, nil) end
  o.max_versions = int('max_versions', 0, LIMITS.max_versions, 10)
  o.dedup_ms = int('dedup_ms', 0, LIMITS.window_ms, 300000)
  o.max_bytes = int('max_bytes', 1, LIMITS.value_bytes, 4194304)
  if o.scalar_ttl == nil then o.scalar_ttl = -1 end
  if o.embedding_ttl == nil then o.embedding_ttl = -1 end
  if not parse_ttl(o.scalar_ttl) then fail('FSARG', string.format('option scalar_ttl must be -1 or 1 to %.0f ms', LIMITS.ttl_ms)) end
  if not parse_ttl(o.embedding_ttl) then fail('FSARG', string.format('option embedding_ttl must be -1 or 1 to %.0f ms', LIMITS.ttl_ms)) end
  if type(o.ttl) == 'number' then
    if not parse_ttl(o.ttl) then fail('FSARG', string.format('option ttl must be -1 or 1 to %.0f ms', LIMITS.ttl_ms)) end
  elseif o.ttl ~= nil then
    if type(o.ttl) ~= 'table' then fail('FSARG', 'option ttl must be a number of ms or a map of feature name -> ms') end
    for name in pairs(o.ttl) do
      if type(name) ~= 'string' then fail('FSARG', 'option ttl maps feature names to ms') end
    end
  end
  return o
end
