-- LIMITS: the documented bounds of every argument of the fs_* functions (docs/storage_format.md,
-- "Bounds"; fsredis/limits.py holds the same numbers). A call outside them is refused with
-- FSARG before anything is written.
local LIMITS = {
  ttl_ms = 3153600000000,         -- a TTL: at most 100 years (365-day years), or -1: never
  max_versions = 10000,           -- versions kept per (entity, feature), the current one included
  window_ms = 604800000,          -- the write-id dedup window: at most 7 days
  value_bytes = 536870912,        -- the largest encoded value a call may allow (512 MiB)
  meta_bytes = 1048576,           -- the lineage map of one write (1 MiB)
  write_id_bytes = 256,           -- a write id
  names = 10000,                  -- feature names in one call
  entities = 10000,               -- entities in one fs_get_batch or fs_write_batch call
  version = 140737488355327,      -- a version number, and a write's sequence number (2^47 - 1)
  time_ms = 140737488355327,      -- an event time, in ms either side of the epoch (~4,459 years)
  depth = 4,                      -- nesting of lists and maps in a lineage map
}
