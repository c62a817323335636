--! include: lib/fail.lua
-- parse_keys(keys, count, typed) -> `keys` when they are the first `count` keys of one entity in
-- the documented order: <base>v (values hash), <base>x (expiry hash), <base>h (history hash),
-- <base>w (write-id sorted set), where <base> is "<ns>:[<type>:]{<id>}:". Else FSARG.
-- With `typed`, each key must also be absent or of its kind (TYPE), so that no later call of a
-- writing function can fail with WRONGTYPE after its first write.
local KEY_SUFFIXES, KEY_KINDS = {'v', 'x', 'h', 'w'}, {'hash', 'hash', 'hash', 'zset'}

local function parse_keys(keys, count, typed)
  if #keys ~= count then
    fail('FSARG', 'expected the ' .. count .. ' keys of one entity, got ' .. #keys .. ' keys')
  end
  local base = string.match(keys[1], '^(.+:{[^{}]+}:)v$')
  if not base then
    fail('FSARG', 'the first key must be an entity values key <ns>:[<type>:]{<id>}:v, got ' .. keys[1])
  end
  for i = 2, count do
    if keys[i] ~= base .. KEY_SUFFIXES[i] then
      fail('FSARG', 'key ' .. i .. ' must be ' .. base .. KEY_SUFFIXES[i] .. ', got ' .. keys[i])
    end
  end
  if typed then
    for i = 1, count do
      local kind = redis.call('TYPE', keys[i])['ok']
      if kind ~= 'none' and kind ~= KEY_KINDS[i] then
        fail('FSARG', 'key ' .. keys[i] .. ' holds a ' .. kind .. ', not a ' .. KEY_KINDS[i] .. ': it is not an fsredis key')
      end
    end
  end
  return keys
end
