--! function: fs_write_batch
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/now_ms.lua
--! include: lib/parse_int.lua
--! include: lib/parse_entity_key.lua
--! include: lib/parse_log_key.lua
--! include: lib/parse_options.lua
--! include: lib/parse_meta.lua
--! include: lib/parse_write_id.lua
--! include: lib/parse_features.lua
--! include: lib/read_entity.lua
--! include: lib/seen_write.lua
--! include: lib/write_digest.lua
--! include: lib/apply_write.lua
--! include: lib/refused.lua
-- Write many entities in one call, each as fs_write would: atomic per entity, each with its own
-- write id and event time. An entity refused by a check (a value, a registered rule, a damaged
-- stored field) is reported and left unchanged; the others are written. The call as a whole is
-- not a transaction. The same entity may appear more than once (its writes apply in order).
--
-- Parse, then apply: every entity is checked before the first write.
--
-- KEYS     per entity, in order: its hash <ns>:[<type>:]{<id>}:e, optionally followed by the
--          change log of its slot <ns>:{<tag>}:log (as fs_write); at most 10,000 entities. On a
--          cluster all keys of a call share a slot.
-- ARGV[1]  options shared by every entity, as fs_write (without id and event_time); a ttl map
--          names features of any entity (each takes the entries of the features it has)
-- ARGV[2]  meta shared by every entity, as fs_write
-- ARGV[3..] one block per entity, in KEYS order: write id, event time (integer ms, or "" for the
--          server's time), n (1-10,000), then n name, value pairs
-- Returns one reply per entity, in KEYS order: {1, versions...} as fs_write, {0} for a write id
--         already applied, or the error reply of the check that refused it (FSVALIDATION,
--         FSCORRUPT).
-- Errors: FSARG for a malformed call (keys, options, meta, blocks): then nothing is written.
if #KEYS < 1 or #KEYS > 2 * LIMITS.entities then fail('FSARG', 'fs_write_batch takes 1 to ' .. LIMITS.entities .. ' entity keys') end
local o = parse_options(ARGV[1], false)
if o.id ~= nil or o.event_time ~= nil then fail('FSARG', 'fs_write_batch takes write ids and event times per entity, not as options') end
local _, meta = parse_meta(ARGV[2])
local now = now_ms()
local entities, logs = {}, {}  -- the entity keys, and the change log of each (or false)
local checked = {}  -- log key -> true once checked
local k = 1
while k <= #KEYS do
  local key, log = KEYS[k], KEYS[k + 1]
  if log and string.sub(log, -4) == ':log' then
    if not checked[log] then checked[log] = parse_log_key(key, log, true) end
    k = k + 2
  else
    log, k = false, k + 1
  end
  entities[#entities + 1], logs[#entities + 1] = key, log
end
if #entities > LIMITS.entities then fail('FSARG', 'fs_write_batch takes 1 to ' .. LIMITS.entities .. ' entity keys') end
local plans, pos = {}, 3
for e = 1, #entities do
  local key, absent = parse_entity_key(entities[e], true)
  if pos + 2 > #ARGV then fail('FSARG', 'the block of entity ' .. e .. ' is missing') end
  local id = parse_write_id(ARGV[pos])
  local event = nil
  if ARGV[pos + 1] ~= '' then event = parse_int(ARGV[pos + 1], 'event time', -LIMITS.time_ms, LIMITS.time_ms) end
  local count = parse_int(ARGV[pos + 2], 'feature count', 1, LIMITS.names)
  if pos + 2 + 2 * count > #ARGV then fail('FSARG', 'the block of entity ' .. e .. ' is truncated') end
  local plan = {key = key, id = id, event = event, absent = absent, log = logs[e] or nil}
  local ok, err = pcall(function()
    plan.names, plan.values, plan.ttls = parse_features(key, ARGV, pos + 3, count, o, true)
  end)
  if not ok then plan.refused = refused(err, '^FSVALIDATION ') end
  plans[e] = plan
  pos = pos + 3 + 2 * count
end
if pos ~= #ARGV + 1 then fail('FSARG', 'fs_write_batch got more arguments than its blocks take') end
local read = {}  -- key -> true once the first block of the entity keeps its state
for _, plan in ipairs(plans) do
  if not plan.refused then
    -- Every block is read here, so a damaged field of any block refuses that block before
    -- anything is written; a later block of the same entity reads it again when it applies.
    local ok, st = pcall(read_entity, plan.key, plan.names, now, plan.absent)
    if not ok then
      plan.refused = refused(st, '^FSCORRUPT ')
    elseif read[plan.key] == nil then
      plan.st, read[plan.key] = st, true
    end
  end
end

-- Everything is checked: from here on, apply.
local out = {}
for e, plan in ipairs(plans) do
  if plan.refused then
    out[e] = {err = plan.refused}
  else
    local st = plan.st or read_entity(plan.key, plan.names, now)
    o.id, o.event_time, o.digest, o.log = plan.id, plan.event, write_digest(plan.id), plan.log
    if o.dedup_ms > 0 and seen_write(st.log, o.digest) then
      redis.call('HSET', plan.key, '#w', st.log)  -- (as fs_write: so that a WAIT covers the first application)
      out[e] = {0}
    else
      local versions = apply_write(plan.key, st, plan.names, plan.values, plan.ttls, o, meta, now)
      table.insert(versions, 1, 1)
      out[e] = versions
    end
  end
end
return out
