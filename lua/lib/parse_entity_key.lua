--! include: lib/fail.lua
-- parse_entity_key(key, typed) -> `key` when it names an entity: "<ns>:[<type>:]{<id>}:e"; else
-- FSARG. With `typed`, the key must also be absent or a hash (TYPE), so that no later call of a
-- writing function can fail with WRONGTYPE after its first write, and the second result says
-- whether it is absent (a new entity: nothing to read).
local function parse_entity_key(key, typed)
  if key == nil or not string.find(key, '^.+:{[^{}]+}:e$') then
    fail('FSARG', 'expected an entity key <ns>:[<type>:]{<id>}:e, got ' .. tostring(key))
  end
  if typed then
    local kind = redis.call('TYPE', key)['ok']
    if kind ~= 'none' and kind ~= 'hash' then
      fail('FSARG', 'key ' .. key .. ' holds a ' .. kind .. ', not a hash: it is not an fsredis key')
    end
    return key, kind == 'none'
  end
  return key, false
end
