--! function: fs_migrate
--! include: lib/fail.lua
--! include: lib/limits.lua
--! include: lib/now_ms.lua
--! include: lib/pack_head.lua
--! include: lib/pack_index.lua
--! include: lib/index_cut.lua
--! include: lib/pack_record.lua
--! include: lib/call_chunked.lua
--! include: lib/write_digest.lua
--! include: lib/check_feature.lua
--! include: lib/set_deadline.lua
-- Convert one entity from storage format 1 (four keys: values, expiry, history, write ids) to
-- format 2 (one hash, docs/storage_format.md), atomically: its current values with their
-- expiry, every kept history record (as one format-2 record per original write: the records of
-- one write id and time share it), version counters and remembered write ids. A version's event
-- time is its write time (format 1 had none). The format-1 keys are deleted. An entity whose
-- values have all expired is only deleted.
--
-- Parse, then apply: every format-1 field is read and checked before the first write.
--
-- KEYS[1..4] format-1 keys <base>v, <base>x, <base>h, <base>w (hash, hash, hash, sorted set)
-- KEYS[5]    format-2 key  <base>e, where <base> is "<ns>:[<type>:]{<id>}:"
-- ARGV       none
-- Returns the number of features moved (0: no format-1 data).
-- Errors: FSARG (keys not of one entity, or of other types), FSCONFLICT (the entity already has a
--         format-2 key: it was written since the upgrade; nothing changed), FSCORRUPT
--         feature=<name> rule=counter|record|value (a format-1 field that cannot be read, or a
--         current value fs_write would refuse)
if #KEYS ~= 5 or #ARGV ~= 0 then fail('FSARG', 'fs_migrate takes the 4 format-1 keys and the format-2 key of one entity') end
local rcall = redis.call
local base = string.match(KEYS[1], '^(.+:{[^{}]+}:)v$')
if not base then fail('FSARG', 'the first key must be a format-1 values key <ns>:[<type>:]{<id>}:v') end
for i, suffix in ipairs({'v', 'x', 'h', 'w', 'e'}) do
  if KEYS[i] ~= base .. suffix then fail('FSARG', 'key ' .. i .. ' must be ' .. base .. suffix) end
end
for i, kind in ipairs({'hash', 'hash', 'hash', 'zset', 'none'}) do
  local found = rcall('TYPE', KEYS[i])['ok']
  if found ~= 'none' and found ~= kind then
    if i == 5 then fail('FSCONFLICT', 'the entity ' .. KEYS[5] .. ' already has format-2 data: migrate it before writing') end
    fail('FSARG', 'key ' .. KEYS[i] .. ' holds a ' .. found .. ', not a ' .. kind)
  end
end
local function pairs_of(flat)
  local out = {}
  for i = 1, #flat, 2 do out[flat[i]] = flat[i + 1] end
  return out
end
local values, expiry, history = pairs_of(rcall('HGETALL', KEYS[1])), pairs_of(rcall('HGETALL', KEYS[2])), pairs_of(rcall('HGETALL', KEYS[3]))
local now = now_ms()

-- Features: every name with a value or a counter.
local names, counters = {}, {}
for name in pairs(values) do
  if string.byte(name, 1) ~= 35 then names[#names + 1] = name end  -- format 1's '#min' is bookkeeping
end
for field, text in pairs(history) do
  if string.byte(field, 1) ~= 35 and not string.find(field, '#', 1, true) then
    if #text > 16 or not string.find(text, '^%d+$') or tonumber(text) > LIMITS.version then
      fail('FSCORRUPT', 'feature=' .. field .. ' rule=counter the format-1 version counter is not a number')
    end
    counters[field] = tonumber(text)
    if values[field] == nil then names[#names + 1] = field end
  end
end
table.sort(names)
for _, name in ipairs(names) do  -- what fs_write would have refused cannot become a current value
  if values[name] ~= nil and not pcall(check_feature, name, values[name], LIMITS.value_bytes) then
    fail('FSCORRUPT', 'feature=' .. string.sub(name, 1, 128) .. ' rule=value the format-1 value is not one fsredis stores')
  end
end

-- Records: uint32 n | float64 version | float64 time | float64 expires | uint32 w | id | meta | value
local writes, by_key, versions = {}, {}, {}
for _, name in ipairs(names) do
  local top = math.max(counters[name] or 1, 1)  -- a value without a counter (or with 0) is version 1
  local list = {}
  for v = top, math.max(1, top - LIMITS.max_versions + 1), -1 do
    local raw = history[name .. '#' .. v]
    if raw then
      local n = #raw >= 32 and struct.unpack('<I4', raw)
      local w = n and struct.unpack('<I4', raw, 29)
      if not n or n < 28 + w or 4 + n > #raw then
        fail('FSCORRUPT', 'feature=' .. name .. ' rule=record the format-1 record of version ' .. v .. ' is unreadable')
      end
      local _, time, expires = struct.unpack('<ddd', raw, 5)
      local id = string.sub(raw, 33, 32 + w)
      local meta = string.sub(raw, 33 + w, 4 + n)
      -- One record per write: the records of one write id, time and meta. Two versions of one
      -- feature never share a record (a record holds one value per feature), so a repeat of
      -- that key (dedup off, same id, same millisecond) opens another.
      local group = id .. '\0' .. string.format('%.17g', time) .. '\0' .. meta
      local write = by_key[group]
      while write and write.made[name] do
        group = group .. '\0'
        write = by_key[group]
      end
      if not write then
        write = {time = time, id = id, meta = meta, refs = 0, names = {}, values = {}, made = {}}
        by_key[group] = write
        writes[#writes + 1] = write
      end
      write.made[name] = true
      list[#list + 1] = {v = v, time = time, expires = expires > 0 and expires or 0, write = write,
        value = string.sub(raw, 5 + n)}
    end
  end
  versions[name] = list  -- newest first
end
table.sort(writes, function(a, b) return a.time < b.time or (a.time == b.time and a.id < b.id) end)
for seq, write in ipairs(writes) do write.seq = seq end

-- Everything is read and checked: from here on, apply.
local set, expiries, moved = {}, {}, 0
for _, name in ipairs(names) do
  local top, list = math.max(counters[name] or 1, 1), versions[name]
  local value, at = values[name], 0
  if expiry[name] then  -- an expiry that is not a whole number of ms counts as past, as format 1 read it
    at = tonumber(expiry[name])
    if not at or at ~= at or at < 1 or at ~= math.floor(at) or at > LIMITS.time_ms then at = 1 end
  end
  local live = value ~= nil and (at == 0 or at > now)
  local entries = {}
  for i = #list, 1, -1 do  -- oldest first
    local version = list[i]
    local current = live and version.v == top
    version.write.refs = version.write.refs + (current and 1 or 2)
    if not current then
      entries[#entries + 1] = {version.v, version.time, version.expires, version.write.seq, version.write.seq}
      local write = version.write
      write.names[#write.names + 1] = name
      write.values[#write.values + 1] = version.value
    end
  end
  local cur = false
  if live then
    local made = list[1] and list[1].v == top and list[1].write or nil
    cur = {v = top, e = made and made.time or now}
    set[#set + 1] = name
    set[#set + 1] = pack_head(at, cur.e, top, made and made.seq or 0, value)
    expiries[#expiries + 1] = at
  end
  local cut = index_cut(top, entries, cur, nil)  -- format 1 kept versions in write order
  if #entries > 0 or not live or cut ~= -LIMITS.time_ms - 1 then
    set[#set + 1] = name .. '#'
    set[#set + 1] = pack_index(top, entries, cut)
  end
  moved = moved + 1
end
for _, write in ipairs(writes) do
  if write.refs > 0 then
    set[#set + 1] = string.format('#%d', write.seq)
    set[#set + 1] = pack_record(write.refs, write.time, write.id, write.meta, write.names, write.values)
  end
end
local log = {}
local ids = rcall('ZRANGE', KEYS[4], -256, -1, 'WITHSCORES')  -- the write log keeps 256
for i = 1, #ids, 2 do
  log[#log + 1] = write_digest(ids[i]) .. struct.pack('<i6', tonumber(ids[i + 1]))
end
rcall('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if #expiries == 0 then return moved end  -- every value had expired: nothing to keep
if #log > 0 then
  set[#set + 1] = '#w'
  set[#set + 1] = table.concat(log)
end
call_chunked('HSET', KEYS[5], set)
set_deadline(KEYS[5], #writes, expiries, now)
return moved
