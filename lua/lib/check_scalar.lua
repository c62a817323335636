--! include: lib/reject.lua
--! include: lib/show_value.lua
-- check_scalar(name, v, rules, what): refuse a decoded number or string outside the rules' min,
-- max or allowed values; `what` prefixes the value in the message ('' or 'item 3 ').
local function check_scalar(name, v, rules, what)
  if rules.min and v < rules.min then
    reject(name, 'min', what .. show_value(v) .. ' is below the minimum ' .. rules.min)
  end
  if rules.max and v > rules.max then
    reject(name, 'max', what .. show_value(v) .. ' is above the maximum ' .. rules.max)
  end
  if rules.allowed and not rules.allowed[v] then
    reject(name, 'allowed', what .. show_value(v) .. ' is not one of the allowed values')
  end
end
