--! function: fs_put
--! include: lib/fail.lua
--! include: lib/parse_entity_key.lua
--! include: lib/parse_log_key.lua
--! include: lib/parse_options.lua
--! include: lib/parse_meta.lua
--! include: lib/parse_features.lua
--! include: lib/registry.lua
--! include: lib/json_encoded.lua
--! include: lib/write_one.lua
-- Write features of one entity given as JSON, for an operator at redis-cli: the values are
-- encoded here (lib/json_encoded.lua) and then written exactly as fs_write writes them (every
-- check, the registered rules, versions, TTLs, history, the change log).
--
-- KEYS[1]  entity hash  <ns>:[<type>:]{<id>}:e
-- KEYS[2]  optional: the change log of the entity's slot, as fs_write
-- ARGV[1]  the features, a JSON object name -> value ({"price": 949.99, "tags": ["a"]})
-- ARGV[2]  optional, a JSON object of options: "write_id" (default: one made from the call and
--          the server time, so a repeated call writes again), "ttl" (seconds, null: never, or an
--          object name -> seconds), "event_time" (seconds since the epoch), "max_versions"
--          (default 10), "source" (default "redis-cli") and "lineage" (an object kept with the write)
-- Returns a JSON object {"applied": true|false, "versions": {name: version}, "history_only":
--         [names]} (applied false: the write id was already applied).
-- Errors: as fs_write; FSARG when ARGV[1] or ARGV[2] is not a JSON object of that shape
if #KEYS ~= 1 and #KEYS ~= 2 then fail('FSARG', 'fs_put takes the entity hash and optionally its change log') end
if #ARGV < 1 or #ARGV > 2 then fail('FSARG', 'fs_put takes the features (JSON) and optionally options (JSON)') end
local key, absent = parse_entity_key(KEYS[1], true)
local function object(text, what)
  local ok, value = pcall(cjson.decode, text)
  if not ok or type(value) ~= 'table' or value[1] ~= nil then fail('FSARG', what .. ' must be a JSON object') end
  return value
end
local features = object(ARGV[1], 'the features (ARGV[1])')
local given = ARGV[2] and object(ARGV[2], 'the options (ARGV[2])') or {}
local known = {write_id = true, ttl = true, event_time = true, max_versions = true, source = true, lineage = true}
for name in pairs(given) do
  if not known[name] then fail('FSARG', 'unknown option ' .. tostring(name)) end
end
local function ms(seconds, what)
  if seconds == cjson.null then return -1 end
  if type(seconds) ~= 'number' then fail('FSARG', what .. ' is a number of seconds') end
  return math.floor(seconds * 1000 + 0.5)
end
local options = {max_versions = given.max_versions, scalar_ttl = -1, embedding_ttl = -1}
options.id = given.write_id
if options.id == nil then
  local t = redis.call('TIME')
  options.id = 'fs_put:' .. redis.sha1hex(ARGV[1] .. '\0' .. (ARGV[2] or '') .. '\0' .. t[1] .. '.' .. t[2])
end
if given.event_time ~= nil then options.event_time = ms(given.event_time, 'event_time') end
if type(given.ttl) == 'table' then
  options.ttl = {}
  for name, seconds in pairs(given.ttl) do options.ttl[name] = ms(seconds, 'ttl of ' .. tostring(name)) end
elseif given.ttl ~= nil then
  options.ttl = ms(given.ttl, 'ttl')
end
local o = parse_options(cmsgpack.pack(options), true)
if KEYS[2] then o.log = parse_log_key(key, KEYS[2]) end
local lineage = given.lineage or {}
if type(lineage) ~= 'table' then fail('FSARG', 'the option lineage must be a JSON object') end
lineage.source = given.source or lineage.source or 'redis-cli'
local _, meta = parse_meta(cmsgpack.pack(lineage))
local rules = entity_rules(key) or {}
local names, args = {}, {}
for name in pairs(features) do
  if type(name) ~= 'string' then fail('FSARG', 'feature names are strings') end
  names[#names + 1] = name
end
table.sort(names)
for i, name in ipairs(names) do
  args[2 * i - 1], args[2 * i] = name, json_encoded(name, features[name], rules[name])
end
local checked, values, ttls = parse_features(key, args, 1, #names, o)
local reply = write_one(key, absent, o, meta, checked, values, ttls)
local versions, late = {}, {}
for i = 2, #reply do
  versions[checked[i - 1]] = math.abs(reply[i])
  if reply[i] < 0 then late[#late + 1] = checked[i - 1] end
end
-- (cjson prints an empty table as {}: an empty list goes in as a mark, replaced after)
local text = cjson.encode({applied = reply[1] == 1, versions = versions, history_only = #late > 0 and late or '\1[]'})
return (string.gsub(text, '"\\u0001%[%]"', '[]'))
