--! include: lib/fail.lua
--! include: lib/limits.lua
-- parse_names(args, from, what) -> the feature names args[from..], each a non-empty string without
-- '#' (the entity's bookkeeping fields, such as "#", "#12" and "name#", have one), at most
-- LIMITS.names of them; else FSARG. Reads use it; writes check the full grammar (check_feature).
local function parse_names(args, from, what)
  if #args - from + 1 > LIMITS.names then
    fail('FSARG', what .. ' takes at most ' .. LIMITS.names .. ' feature names, got ' .. (#args - from + 1))
  end
  for i = from, #args do
    local name = args[i]
    if #name == 0 or #name > 128 or string.find(name, '#', 1, true) then
      fail('FSARG', 'feature names are 1-128 characters without #, got "' .. string.sub(name, 1, 64) .. '"')
    end
  end
  return args
end
