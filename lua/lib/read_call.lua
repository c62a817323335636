--! include: lib/fail.lua
-- read_call(command, key, ...) -> the reply of a reading command, or FSARG when the key holds
-- another kind of value than fsredis keeps there (WRONGTYPE). Read-only functions use it instead of
-- checking each key's TYPE first: they write nothing, so they may find out as they go. Any other
-- error (an ACL refusal, ...) is raised as it is.
local function read_call(command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply['err'] then
    if string.sub(reply['err'], 1, 9) ~= 'WRONGTYPE' then error(reply) end
    fail('FSARG', 'key ' .. key .. ' is not an fsredis key (' .. reply['err'] .. ')')
  end
  return reply
end
