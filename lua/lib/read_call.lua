--! include: lib/fail.lua
-- read_call(command, key, ...) -> the reply of a reading command, or FSARG when the key holds
-- another kind of value than fsredis keeps there (WRONGTYPE). Read-only functions use it instead of
-- checking each key's TYPE first: they write nothing, so they may find out as they go.
local function read_call(command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply['err'] then
    fail('FSARG', 'key ' .. key .. ' is not an fsredis key (' .. reply['err'] .. ')')
  end
  return reply
end
