--! function: fs_get_many
--! flags: no-writes, allow-cross-slot-keys
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/parse_int.lua
--! include: lib/parse_names.lua
--! include: lib/now_ms.lua
-- Read the same features of many entities of one cluster node in one call: fs_get_batch with the
-- entity keys as arguments, so they may lie in any of the slots this node serves (one call per
-- node instead of one per slot). A key the node cannot serve now (its slot moved, or is migrating
-- and the key already left) is answered with the error the server gave for it, and the client
-- reads that entity again with fs_get_batch, which follows the cluster's redirects.
--
-- KEYS[]   none: the client routes the call to the node that serves the keys
-- ARGV[1]  n, the number of feature names (1-1,000)
-- ARGV[2..n+1]  feature names (no '#')
-- ARGV[n+2..]   entity hashes <ns>:[<type>:]{<id>}:e; 1 to 10,000
-- Returns {server time ms, one entry per entity in argument order: a list of one field per name as
--         stored (nil: missing; see fs_get_batch), or the error reply of a key not served here}.
-- Errors: FSARG (keys declared, malformed counts, names or keys, a key of another type)
if #KEYS ~= 0 then fail('FSARG', 'fs_get_many takes its entity keys as arguments, not as keys') end
local n = parse_int(ARGV[1], 'name count', 1, 1000)  -- (one HMGET each: unpack takes them all)
local first = n + 2
if #ARGV < first then fail('FSARG', 'fs_get_many needs ' .. n .. ' feature names and at least one entity key') end
if #ARGV - first + 1 > LIMITS.entities then fail('FSARG', 'fs_get_many takes at most ' .. LIMITS.entities .. ' entities') end
local names = {}
for i = 1, n do names[i] = ARGV[i + 1] end
parse_names(names, 1, 'fs_get_many')
local sub = string.sub
for e = first, #ARGV do
  if sub(ARGV[e], -3) ~= '}:e' then fail('FSARG', 'argument ' .. e .. ' is not an entity hash <ns>:[<type>:]{<id>}:e') end
end
local out = {now_ms()}
local pcall_ = redis.pcall
for e = first, #ARGV do
  local row = pcall_('HMGET', ARGV[e], unpack(names))
  if type(row) == 'table' and row['err'] and sub(row['err'], 1, 9) == 'WRONGTYPE' then
    fail('FSARG', 'key ' .. ARGV[e] .. ' is not an fsredis key (' .. row['err'] .. ')')
  end
  out[#out + 1] = row
end
return out
