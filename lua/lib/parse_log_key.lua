--! include: lib/fail.lua
-- parse_log_key(entity_key, key, typed) -> `key` when it can be the change log of `entity_key`: a
-- key "<ns>:{<tag>}:log" of the entity's namespace (the client picks the tag of the entity's
-- slot, so on a cluster the server refuses any other); else FSARG. With `typed`, also absent or
-- a stream (TYPE): for a call that appends after other writes (a batch's later entities); one
-- that appends first learns it from XADD (lib/append_log.lua).
local function parse_log_key(entity_key, key, typed)
  local prefix = string.match(key, '^(.+:){[^{}]+}:log$')
  if not prefix or string.sub(entity_key, 1, #prefix) ~= prefix then
    fail('FSARG', 'expected the change log <ns>:{<tag>}:log of the namespace of ' .. entity_key .. ', got ' .. key)
  end
  local kind = typed and redis.call('TYPE', key)['ok']
  if kind and kind ~= 'none' and kind ~= 'stream' then
    fail('FSARG', 'key ' .. key .. ' holds a ' .. kind .. ', not a stream: it is not an fsredis change log')
  end
  return key
end
