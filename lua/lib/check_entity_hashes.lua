--! include: lib/fail.lua
-- check_entity_hashes(keys) -> nothing, or FSARG naming the first of `keys` that does not end as an
-- entity hash does ("}:e"): the cheap check of the batch reads, which learn a key's type from
-- the reply of their read (read_call).
local function check_entity_hashes(keys)
  local sub = string.sub
  for e = 1, #keys do
    if sub(keys[e], -3) ~= '}:e' then fail('FSARG', 'key ' .. e .. ' is not an entity hash <ns>:[<type>:]{<id>}:e') end
  end
end
