--! include: lib/reject.lua
-- check_name(name): FSVALIDATION rule=name unless `name` can name a feature: 1-128 characters of
-- [A-Za-z0-9_.-], starting with a letter or '_'.
local function check_name(name)
  if #name == 0 or #name > 128 or not string.find(name, '^[%a_][%w_.%-]*$') then
    reject(string.sub(name, 1, 256), 'name', 'names are 1-128 characters of A-Z a-z 0-9 _ . - and start with a letter or _')
  end
end
