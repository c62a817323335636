-- fail(code, text): abort the call with the error reply "<code> <text>".
-- Codes are stable and mapped to Python exceptions by fsredis/errors.py:
--   FSVALIDATION feature=<name> rule=<rule> <detail>   bad feature data, nothing written
--   FSNOTFOUND   feature=<name> rule=<rule> <detail>   no such feature / version
--   FSARG        <detail>                              a malformed call (wrong ARGV shape)
local function fail(code, text)
  error({err = code .. ' ' .. text})
end
