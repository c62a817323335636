-- item_fits(item, dtype) -> whether a decoded list item is of the item dtype: 'int' (an integral
-- finite number), 'float' (a finite number), 'string' or 'bool'. A nil item (msgpack null) never fits.
local function item_fits(item, dtype)
  local t = type(item)
  if dtype == 'int' then return t == 'number' and item == math.floor(item) and item - item == 0 end
  if dtype == 'float' then return t == 'number' and item - item == 0 end
  if dtype == 'string' then return t == 'string' end
  return t == 'boolean'
end
