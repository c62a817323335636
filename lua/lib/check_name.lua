--! include: lib/reject.lua
-- check_name(name): FSVALIDATION rule=name unless `name` can name a feature: 1-128 characters of
-- [A-Za-z0-9_.-], starting with a letter or '_'. Names found valid are remembered (at most 10,000,
-- then the memory starts over): the same few names come in every write, and the verdict is a
-- function of the name alone.
local VALID_NAMES, valid_names = {}, 0

local function check_name(name)
  if VALID_NAMES[name] then return end
  if #name == 0 or #name > 128 or not string.find(name, '^[%a_][%w_.%-]*$') then
    reject(string.sub(name, 1, 256), 'name', 'names are 1-128 characters of A-Z a-z 0-9 _ . - and start with a letter or _')
  end
  if valid_names >= 10000 then VALID_NAMES, valid_names = {}, 0 end
  VALID_NAMES[name], valid_names = true, valid_names + 1
end
