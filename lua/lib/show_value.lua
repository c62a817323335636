-- show_value(v) -> a decoded value as an error message quotes it (strings quoted, cut at 64 bytes).
local function show_value(v)
  if type(v) == 'string' then
    if #v > 64 then return '"' .. string.sub(v, 1, 64) .. '..."' end
    return '"' .. v .. '"'
  end
  return tostring(v)
end
