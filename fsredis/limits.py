"""The documented bounds of every argument of the Lua library (``lua/lib/limits.lua`` holds the
same numbers; a test keeps the two equal). The client checks them first, so a bad value is a
ValidationError or ValueError naming it; the Lua functions refuse anything outside them with
FSARG before they write, whoever calls them."""

from __future__ import annotations

TTL_MS = 3_153_600_000_000
"""Longest TTL: 100 years (365-day years), in ms. -1 means the value never expires."""
MAX_VERSIONS = 10_000
"""Most versions kept per (entity, feature), the current one included; also the most a lineage
read returns."""
WINDOW_MS = 604_800_000
"""Longest dedup window for write ids: 7 days, in ms."""
VALUE_BYTES = 536_870_912
"""Largest ``max_value_bytes`` (512 MiB, Redis's largest string)."""
META_BYTES = 1_048_576
"""Largest lineage map of one write (msgpack bytes)."""
WRITE_ID_BYTES = 256
"""Longest write id."""
NAMES = 10_000
"""Most feature names in one call (a write, a read, a delete)."""
ENTITIES = 10_000
"""Most entities in one fs_get_batch or fs_write_batch call (the client sends 500 a call)."""
VERSION = 2**47 - 1
"""Largest version number (stored as int48), and the largest sequence number of an entity's writes."""
TIME_MS = 2**47 - 1
"""Farthest event time from the epoch, in ms (about 4,459 years either way)."""
DEPTH = 4
"""Deepest nesting of lists and maps in a lineage map."""
