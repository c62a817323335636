-- iso8601(ms) -> the UTC time of `ms` milliseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ"
-- (the days-to-civil-date algorithm of H. Hinnant's chrono date algorithms: Redis's Lua has no
-- os.date). Years outside 0-9999 are written as they come.
local function iso8601(ms)
  local millis = ms % 1000
  local seconds = (ms - millis) / 1000
  local time = seconds % 86400
  local z = (seconds - time) / 86400 + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day,
    math.floor(time / 3600), math.floor(time % 3600 / 60), time % 60, millis)
end
