--! include: lib/fail.lua
--! include: lib/valid_utf8.lua
--! include: lib/limits.lua
-- check_definition(field, text) -> nothing, or FSSCHEMA naming the field and the problem unless
-- `text` is a feature definition that fsredis/schema.py FeatureDefinition.from_dict accepts (the
-- same rules, so a stored definition always compiles into the library): field "<group>:<feature>",
-- a JSON object of known fields, a dtype and only the constraints that apply to it.
local function check_definition(field, text)
  local function bad(why) fail('FSSCHEMA', 'definition ' .. string.sub(field, 1, 200) .. ': ' .. why) end
  local group, name = string.match(field, '^([^:]*):(.*)$')
  if not group or #group > 64 or not string.find(group, '^[%a_][%w_%-]*$') then
    bad('the field is "<group>:<feature>" with a group of 1-64 characters of A-Z a-z 0-9 _ -')
  end
  if #name > 128 or not string.find(name, '^[%a_][%w_.%-]*$') then
    bad('feature names are 1-128 characters of A-Z a-z 0-9 _ . - and start with a letter or _')
  end
  if not valid_utf8(text, 1, #text) then bad('the definition is not valid UTF-8') end
  -- Outside its strings, JSON holds only punctuation, numbers and true/false/null: Redis's cjson
  -- also takes hex, inf and nan, which no other JSON reader does.
  local bare = string.gsub(string.gsub(string.gsub(text, '\\.', ''), '"[^"]*"', '""'), '%a+', function(word)
    if word == 'true' or word == 'false' or word == 'null' or word == 'e' or word == 'E' then return '' end
  end)
  if string.find(bare, '[^%s%d%-%+%.eE{}%[%],:"]') then bad('the definition is not standard JSON') end
  local ok, d = pcall(cjson.decode, text)
  if not ok or type(d) ~= 'table' then bad('a definition is a JSON object') end
  local applies = {
    int = {min = true, max = true, allowed = true}, float = {min = true, max = true},
    string = {allowed = true, max_length = true}, bool = {}, timestamp = {},
    embedding = {dim = true, precision = true},
    list = {items = true, min = true, max = true, allowed = true, max_length = true},
  }
  local known = {dtype = 1, items = 1, dim = 1, precision = 1, min = 1, max = 1, allowed = 1,
    max_length = 1, nullable = 1, ttl = 1, description = 1, owner = 1, tags = 1}
  for key, value in pairs(d) do
    if type(key) ~= 'string' or not known[key] then bad('unknown field ' .. tostring(key)) end
    if value == cjson.null then d[key] = nil end
  end
  local dtype = d.dtype
  if type(dtype) ~= 'string' or not applies[dtype] then
    bad('dtype must be one of int, float, string, bool, timestamp, embedding, list')
  end
  for _, key in ipairs({'items', 'dim', 'min', 'max', 'allowed', 'max_length'}) do
    if d[key] ~= nil and not applies[dtype][key] then bad(key .. ' does not apply to dtype ' .. dtype) end
  end
  local function is_int(v) return type(v) == 'number' and v == math.floor(v) and v - v == 0 end
  if d.precision ~= nil and d.precision ~= 'float32' and not applies[dtype].precision then
    bad('precision does not apply to dtype ' .. dtype)
  end
  if dtype == 'embedding' then
    if not is_int(d.dim) or d.dim < 1 or d.dim > (LIMITS.value_bytes - 4) / 4 then
      bad('an embedding needs dim, an integer from 1 to 134217727')
    end
    if d.precision ~= nil and d.precision ~= 'float32' and d.precision ~= 'float16' then
      bad('precision is float32 or float16')
    end
  end
  local scalar = dtype
  if dtype == 'list' then
    scalar = d.items
    if scalar ~= 'int' and scalar ~= 'float' and scalar ~= 'string' and scalar ~= 'bool' then
      bad('a list needs items: one of int, float, string, bool')
    end
  end
  for _, bound in ipairs({'min', 'max'}) do
    local v = d[bound]
    if v ~= nil then
      if scalar ~= 'int' and scalar ~= 'float' then bad(bound .. ' applies to numbers, not ' .. scalar .. ' items') end
      if type(v) ~= 'number' or v - v ~= 0 then bad(bound .. ' must be a finite number') end
    end
  end
  if d.min ~= nil and d.max ~= nil and d.min > d.max then bad('min is greater than max') end
  if d.allowed ~= nil then
    if scalar ~= 'int' and scalar ~= 'string' then bad('allowed applies to int and string values, not ' .. scalar) end
    if type(d.allowed) ~= 'table' or #d.allowed == 0 then bad('allowed is a non-empty list of ' .. scalar .. ' values') end
    for key, v in pairs(d.allowed) do
      if not is_int(key) or (scalar == 'int' and not is_int(v)) or (scalar == 'string' and type(v) ~= 'string') then
        bad('allowed is a non-empty list of ' .. scalar .. ' values')
      end
    end
  end
  if d.max_length ~= nil and (not is_int(d.max_length) or d.max_length < 0) then bad('max_length is an integer >= 0') end
  if d.nullable ~= nil and type(d.nullable) ~= 'boolean' then bad('nullable is true or false') end
  if d.ttl ~= nil and d.ttl ~= 'never' and (type(d.ttl) ~= 'number' or d.ttl < 0.001 or d.ttl > LIMITS.ttl_ms / 1000) then
    bad("ttl is a number of seconds from 0.001 to 3,153,600,000, 'never', or absent")
  end
  if d.tags ~= nil then
    if type(d.tags) ~= 'table' then bad('tags is a list of strings') end
    for key, v in pairs(d.tags) do
      if not is_int(key) or type(v) ~= 'string' then bad('tags is a list of strings') end
    end
  end
  for _, key in ipairs({'description', 'owner'}) do
    if d[key] ~= nil and type(d[key]) ~= 'string' then bad(key .. ' is a string') end
  end
end
