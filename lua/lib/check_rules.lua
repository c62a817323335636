--! include: lib/reject.lua
--! include: lib/value_kind.lua
--! include: lib/show_value.lua
--! include: lib/check_scalar.lua
--! include: lib/item_fits.lua
-- check_rules(name, value, rules, strict) -> the value to store, or FSVALIDATION naming the
-- feature, the rule and the offending value. `value` is the encoded value (already through
-- check_feature, so it decodes), `rules` the feature's
-- compiled definition (fsredis/schema.py FeatureDefinition.compiled; FeatureDefinition.validate_encoded
-- gives the same verdicts in Python) or nil, in which case the feature passes unless `strict`.
-- A definition the client could not compile arrives as {broken = reason}: every value is refused.
-- Rules: unregistered, definition, nullable, dtype, dim, min, max, allowed, max_length, items.
-- An integer written to a float feature is stored as a float64.
local function check_rules(name, value, rules, strict)
  if not rules then
    if strict then reject(name, 'unregistered', 'the namespace is strict and the entity type does not define it') end
    return value
  end
  if rules.broken then
    reject(name, 'definition', 'the registered definition cannot be used (' .. rules.broken .. '): fix it with fsredis apply')
  end
  local kind = value_kind(value)
  if kind == 'null' then
    if not rules.null then reject(name, 'nullable', 'the value is null and the feature is not nullable') end
    return value
  end
  local dtype = rules.t
  if dtype == 'embedding' then
    local size = rules.tag == '\193e4\0' and 4 or 2
    if string.sub(value, 1, 4) ~= rules.tag then
      reject(name, 'dtype', 'expected a float' .. (size * 8) .. ' embedding, got ' .. kind)
    end
    if #value ~= rules.bytes then
      reject(name, 'dim', 'the embedding has ' .. math.floor((#value - 4) / size) .. ' values, the schema wants '
        .. (rules.bytes - 4) / size)
    end
    return value
  end
  local decoded = nil
  if string.byte(value, 1) ~= 0xC1 then decoded = cmsgpack.unpack(value) end
  if kind ~= dtype then
    if dtype == 'float' and kind == 'int' then
      value = '\203' .. struct.pack('>d', decoded)
    else
      reject(name, 'dtype', 'expected ' .. dtype .. ', got ' .. kind)
    end
  end
  if dtype == 'list' then
    local b = string.byte(value, 1)
    local count = b - 0x90  -- fixarray, else the array 16/32 header
    if b == 0xDC then count = struct.unpack('>I2', value, 2) end
    if b == 0xDD then count = struct.unpack('>I4', value, 2) end
    if rules.maxlen and count > rules.maxlen then
      reject(name, 'max_length', count .. ' items, more than the maximum ' .. rules.maxlen)
    end
    for i = 1, count do
      local item = decoded[i]
      if not item_fits(item, rules.items) then
        reject(name, 'items', 'item ' .. i .. ' (' .. show_value(item) .. ') is not ' .. rules.items)
      end
      check_scalar(name, item, rules, 'item ' .. i .. ' ')
    end
  elseif dtype == 'int' or dtype == 'float' or dtype == 'string' then
    check_scalar(name, decoded, rules, '')
    if dtype == 'string' and rules.maxlen then
      local _, chars = string.gsub(decoded, '[^\128-\191]', '')
      if chars > rules.maxlen then
        reject(name, 'max_length', chars .. ' characters, more than the maximum ' .. rules.maxlen)
      end
    end
  end
  return value
end
