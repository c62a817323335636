-- pack_head(expires, event, version, seq) -> the 24-byte head stored before a current value:
-- int48 LE expiry ms (0: none), int48 LE event time ms, int48 LE version, int48 LE sequence
-- number of the write's record (0: none). 24 bytes keep an embedding's floats 4-byte aligned.
local function pack_head(expires, event, version, seq)
  return struct.pack('<i6i6i6i6', expires, event, version, seq)
end
