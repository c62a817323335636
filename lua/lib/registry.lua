-- REGISTRY: the schema registries of every namespace on this server, compiled into the library by
-- the client that loaded it (fsredis/schema.py, Registry.compiled):
--   groups    key prefix "<ns>:<group>:" -> {strict = bool, features = {name -> rules}}
--   strict    the prefixes "<ns>:" of namespaces in strict mode
--   versions  namespace -> the registry version compiled in
--   empty     true when there is nothing to check (writes skip the lookup)
-- entity_rules(values_key) -> the rules of the entity's group (nil when it has none) and whether
-- features without rules are refused. The group is read from the key: <ns>:<group>:{<id>}:e.
local REGISTRY = @REGISTRY@

local function entity_rules(values_key)
  if REGISTRY.empty then return nil, false end
  local prefix = string.match(values_key, '^(.-){') or ''
  local group = REGISTRY.groups[prefix]
  if group then return group.features, group.strict end
  for _, ns in ipairs(REGISTRY.strict) do
    if string.sub(prefix, 1, #ns) == ns then return nil, true end
  end
  return nil, false
end
