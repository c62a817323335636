-- pack_head(expires, event, version, seq, value) -> a current value as stored: the 24-byte head
-- (int48 LE expiry ms (0: none), int48 LE event time ms, int48 LE version, int48 LE sequence
-- number of the write's record (0: none)) and the value, built as one string. 24 bytes keep an
-- embedding's floats 4-byte aligned.
local function pack_head(expires, event, version, seq, value)
  return struct.pack('<i6i6i6i6c0', expires, event, version, seq, value)
end
