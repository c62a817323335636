--! function: fs_show
--! flags: no-writes
--! include: lib/fail.lua
--! include: lib/parse_entity_key.lua
--! include: lib/parse_names.lua
--! include: lib/read_call.lua
--! include: lib/hmget_many.lua
--! include: lib/now_ms.lua
--! include: lib/read_head.lua
--! include: lib/json_value.lua
-- The live features of one entity as JSON text, for an operator at redis-cli: each with its
-- value (scalars and lists as JSON, a timestamp as ISO 8601, an embedding summarised as dtype,
-- dim, norm and its first values), version, event time and expiry. An expired feature is left
-- out, as every read leaves it out.
--
-- KEYS[1] entity hash   <ns>:[<type>:]{<id>}:e
-- ARGV    feature names (no '#', at most 10,000); none: every live feature
-- Returns a JSON object {"entity_key", "features": {name: {"value", "version", "event_time",
--         "expires_at" (null: never)}}}.
-- Errors: FSARG (not an entity key or not a hash; a malformed name), FSCORRUPT feature=<name>
--         rule=head (a field that is not an fsredis value)
if #KEYS ~= 1 then fail('FSARG', 'fs_show takes one key, the entity hash') end
local key = parse_entity_key(KEYS[1], false)
parse_names(ARGV, 1, 'fs_show')
local now = now_ms()
local names, raws = ARGV, {}
if #ARGV > 0 then
  raws = hmget_many(key, ARGV)
else
  names = {}
  local flat = read_call('HGETALL', key)
  for i = 1, #flat, 2 do
    if not string.find(flat[i], '#', 1, true) then  -- '#' marks the entity's bookkeeping fields
      names[#names + 1], raws[#raws + 1] = flat[i], flat[i + 1]
    end
  end
end
local features = {}
for i = 1, #names do
  local head = raws[i] and read_head(names[i], raws[i])
  if head and (head.x == 0 or head.x > now) then
    features[names[i]] = {
      value = json_value(string.sub(head.raw, 25)), version = head.v, event_time = iso8601(head.e),
      expires_at = head.x > 0 and iso8601(head.x) or cjson.null,
    }
  end
end

local text = cjson.encode({entity_key = key, features = features})
return (string.gsub(text, '"\\u0001%[%]"', '[]'))  -- (empty lists: lib/json_value.lua)
