-- entity_or_error(read, entity) -> read(entity), or, when it raised FSCORRUPT (a stored field written
-- around the library), that error as an error reply {err = "FSCORRUPT ..."} to stand in the
-- entity's place in a batch reply, so the other entities are still read. Any other error is raised
-- again as it came (an FS* error without the place it was raised at, which pcall may have put
-- before its code).
local function entity_or_error(read, entity)
  local ok, row = pcall(read, entity)
  if ok then return row end
  local text = type(row) == 'table' and row.err or row
  local at = type(text) == 'string' and (string.find(text, '^FS%u+ ') or string.match(text, '^[^\n]-:%d+: ()FS%u+ '))
  if not at then error(row, 0) end
  text = string.sub(text, at)
  if string.sub(text, 1, 10) == 'FSCORRUPT ' then return {err = text} end
  error({err = text}, 0)
end
