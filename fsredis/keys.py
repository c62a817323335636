"""Every key name fsredis uses, and the rule that keeps an entity in one slot.

An entity ``product-123`` in namespace ``fs`` owns four keys::

    fs:{product-123}:v   hash: feature -> encoded value
    fs:{product-123}:x   hash: feature -> expiry (ms since the epoch), for features with a TTL
    fs:{product-123}:h   hash: feature -> version counter, "feature#N" -> history record N
    fs:{product-123}:w   sorted set: recently applied write ids (retry protection)

The entity id is the hash tag (the part in braces), so on Redis Cluster all four keys hash to
the same slot and one Lua call may touch them together; it is also why an id may not contain
braces. ``docs/storage_format.md`` describes the values and records.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from redis.crc import key_slot

from fsredis.errors import ValidationError

MAX_ENTITY_ID_LENGTH = 256
_ENTITY_ID = re.compile(r"[^\s{}:\x00-\x1f\x7f]{1,%d}" % MAX_ENTITY_ID_LENGTH)
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-]{1,64}(?::[A-Za-z0-9_.\-]{1,64})*")


class EntityKeys(NamedTuple):
    """The keys of one entity, in the order the Lua commands take them."""

    values: str
    expiry: str
    history: str
    writes: str

    @property
    def slot(self) -> int:
        """The cluster slot of every key of this entity."""
        return key_slot(self.values.encode())


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is usable as a key prefix, else raise ValueError."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"namespace {namespace!r}: use letters, digits, '_', '.', '-', optionally in ':' parts"
        )
    return namespace


def check_entity_id(entity_id: object) -> str:
    """Return ``entity_id`` if it can name an entity, else raise ValidationError.

    Ids are strings of 1-256 characters without white space, control characters, ``{``, ``}``
    or ``:`` (braces would break the hash tag, ``:`` the key layout).
    """
    if not isinstance(entity_id, str):
        raise ValidationError(
            repr(entity_id), "entity_id", f"entity ids are str, got {type(entity_id).__name__}"
        )
    if not _ENTITY_ID.fullmatch(entity_id):
        raise ValidationError(
            entity_id,
            "entity_id",
            f"entity ids are 1-{MAX_ENTITY_ID_LENGTH} characters with no white space, "
            "control characters, '{', '}' or ':'",
        )
    return entity_id


def entity_keys(namespace: str, entity_id: object) -> EntityKeys:
    """The four keys of ``entity_id`` (validated) under ``namespace``."""
    base = f"{namespace}:{{{check_entity_id(entity_id)}}}:"
    return EntityKeys(base + "v", base + "x", base + "h", base + "w")
