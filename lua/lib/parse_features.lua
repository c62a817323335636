--! include: lib/fail.lua
--! include: lib/reject.lua
--! include: lib/limits.lua
--! include: lib/parse_ttl.lua
--! include: lib/check_feature.lua
--! include: lib/registry.lua
--! include: lib/check_rules.lua
-- parse_features(key, args, from, count, o, shared) -> names, values, ttls: the `count` name, value pairs
-- args[from..] of a write to entity `key`, each checked (check_feature, then the registered rules
-- of the entity's type: check_rules), with its TTL in ms (-1: never): the call's own (o.ttl, a
-- number or a map), else the feature's registered TTL, else o.scalar_ttl or o.embedding_ttl by
-- the value's kind. FSVALIDATION names the first feature refused (rules name|encoding|size|
-- finite|ttl|duplicate|unregistered, or a registered rule). A ttl map naming a feature the write
-- does not have is refused (rule ttl), unless `shared` (one map for the many writes of a batch).
local function parse_features(key, args, from, count, o, shared)
  if count < 1 or count > LIMITS.names then
    fail('FSARG', 'a write takes 1 to ' .. LIMITS.names .. ' features, got ' .. count)
  end
  local rules, strict = entity_rules(key)
  local own = o.ttl
  local per_feature = type(own) == 'table'
  local names, values, ttls, seen = {}, {}, {}, {}
  for i = 1, count do
    local name, value = args[from + 2 * i - 2], args[from + 2 * i - 1]
    check_feature(name, value, o.max_bytes)
    if seen[name] then reject(name, 'duplicate', 'the feature appears twice in one write') end
    seen[name] = true
    local rule = rules and rules[name]
    local ttl = own
    if per_feature then
      ttl = own[name]
      if ttl ~= nil and not parse_ttl(ttl) then
        reject(name, 'ttl', string.format('the TTL must be -1 (never) or 1 to %.0f ms', LIMITS.ttl_ms))
      end
    end
    if ttl == nil then
      if rule and rule.ttl then
        ttl = rule.ttl
      elseif string.byte(value, 1) == 0xC1 and string.byte(value, 2) == 101 then  -- "\xC1e": an embedding
        ttl = o.embedding_ttl
      else
        ttl = o.scalar_ttl
      end
    end
    names[i] = name
    values[i] = (rule or strict) and check_rules(name, value, rule, strict) or value
    ttls[i] = ttl
  end
  if per_feature and not shared then
    for name in pairs(own) do
      if not seen[name] then reject(tostring(name), 'ttl', 'the ttl map names a feature this write does not have') end
    end
  end
  return names, values, ttls
end
