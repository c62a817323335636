-- refused(err, pattern) -> the text of the error `err` that pcall caught (pcall hands an error
-- reply over as its text) when it matches `pattern`, e.g. '^FSVALIDATION '; any other error is
-- raised again, as the error reply it was.
local function refused(err, pattern)
  if type(err) == 'string' then
    if string.find(err, pattern) then return err end
    if string.find(err, '^FS[A-Z]+ ') then error({err = err}) end
  end
  error(err)
end
