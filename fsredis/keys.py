"""Every key name fsredis uses, and the rule that keeps an entity in one slot.

An entity ``product:123`` (entity type ``product``, id ``123``) in namespace ``fs`` owns one
key, a hash (storage format 2)::

    fs:product:{123}:e   feature -> head (expiry, event time, version) + value;
                         "feature#" -> older versions; "#<n>" -> record of write n;
                         "#" -> entity header; "#w" -> recently applied write ids

One key, so an entity is never half there: on Redis Cluster a slot migration finds all of it on
one node or the other, and a single read is one ``HMGET``. The entity type is optional (``123``
alone owns ``fs:{123}:e``) and names the feature group whose registered definitions the Lua write
enforces, so ``product:123`` and ``user:123`` never share a key. The id is the hash tag (the
part in braces), so every key of one Lua call about one entity shares its slot; it is also why
an id may not contain braces. The schema registry of a namespace lives in ``<ns>:{registry}``
(see :func:`registry_keys`). ``docs/storage_format.md`` describes the fields; format 1 used four
keys per entity (:func:`v1_keys`, read by ``fsredis migrate``).

With the change log on, a write also appends to the stream ``<ns>:{<tag>}:log`` of its entity's
slot (:func:`log_key`): the tag is a short string that hashes to that slot, so the stream lives
beside the entity on a cluster and moves with it when the slot moves.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from fsredis.lazy import numpy as np

from redis.crc import key_slot

from fsredis.errors import ValidationError

MAX_ENTITY_ID_LENGTH = 256
_GROUP = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
_ID = re.compile(r"[^\s{}:\x00-\x1f\x7f]{1,%d}" % MAX_ENTITY_ID_LENGTH)
REGISTRY_INDEX = "fsredis:{registry}:namespaces"
"""A set of the namespaces that have a registry (the library compiles all of them in)."""
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-]{1,64}(?::[A-Za-z0-9_.\-]{1,64})*")


class EntityKeys(NamedTuple):
    """The key of one entity (a tuple, as the Lua commands take their keys)."""

    entity: str

    @property
    def slot(self) -> int:
        """The cluster slot of the entity."""
        return key_slot(self.entity.encode())


class V1Keys(NamedTuple):
    """The four keys of an entity in storage format 1 (before fsredis 0.2), for ``fs_migrate``."""

    values: str
    expiry: str
    history: str
    writes: str


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is usable as a key prefix, else raise ValueError."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"namespace {namespace!r}: use letters, digits, '_', '.', '-', optionally in ':' parts"
        )
    return namespace


class RegistryKeys(NamedTuple):
    """The keys of a namespace's schema registry, in the order ``fs_registry_put`` takes them.

    They share the hash tag ``{registry}`` (with the index of namespaces), so one Lua call
    updates a registry, its change log and the index together, on a cluster too."""

    definitions: str
    log: str
    namespaces: str


def registry_keys(namespace: str) -> RegistryKeys:
    """``<ns>:{registry}`` (hash of definitions), ``<ns>:{registry}:log`` (stream of changes)."""
    return RegistryKeys(f"{namespace}:{{registry}}", f"{namespace}:{{registry}}:log", REGISTRY_INDEX)


def check_group(group: object) -> str:
    """Return ``group`` if it can name an entity type (feature group), else raise ValueError."""
    if not isinstance(group, str) or not _GROUP.fullmatch(group):
        raise ValueError(
            f"entity type {group!r}: 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or _"
        )
    return group


def split_entity(entity_id: object) -> tuple[str | None, str]:
    """``"product:123"`` -> ``("product", "123")``; ``"123"`` -> ``(None, "123")``; raises
    ValidationError for anything that cannot name an entity (see :func:`check_entity_id`)."""
    if not isinstance(entity_id, str):
        raise ValidationError(
            repr(entity_id), "entity_id", f"entity ids are str, got {type(entity_id).__name__}"
        )
    group, colon, ident = entity_id.rpartition(":")
    if (colon and not _GROUP.fullmatch(group)) or not _ID.fullmatch(ident) or not _encodable(ident):
        raise ValidationError(
            entity_id,
            "entity_id",
            f"entity ids are [<type>:]<id>: a type of 1-64 characters of A-Z a-z 0-9 _ - and an "
            f"id of 1-{MAX_ENTITY_ID_LENGTH} characters with no white space, control characters, "
            "'{', '}' or ':'",
        )
    return group or None, ident


def _encodable(text: str) -> bool:
    """Whether ``text`` has a UTF-8 form (a lone surrogate has none)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_entity_id(entity_id: object) -> str:
    """Return ``entity_id`` if it can name an entity, else raise ValidationError.

    An entity is ``<type>:<id>`` or a bare ``<id>``. Types are 1-64 characters of
    ``A-Z a-z 0-9 _ -`` starting with a letter or ``_``; ids are 1-256 characters without white
    space, control characters, ``{``, ``}`` or ``:`` (braces would break the hash tag, ``:`` the
    key layout).
    """
    split_entity(entity_id)
    return entity_id  # type: ignore[return-value]


def _base(namespace: str, entity_id: object) -> str:
    group, ident = split_entity(entity_id)
    return f"{namespace}:{group}:{{{ident}}}:" if group else f"{namespace}:{{{ident}}}:"


def entity_keys(namespace: str, entity_id: object) -> EntityKeys:
    """The key of ``entity_id`` (validated) under ``namespace``: ``<ns>:[<type>:]{<id>}:e``."""
    return EntityKeys(_base(namespace, entity_id) + "e")


def entity_pattern(namespace: str, entity_type: str | None = None, ident: str = "*") -> str:
    """The ``SCAN`` pattern of the entity keys of a namespace: every type, or ``entity_type``'s,
    with ids matching the glob ``ident``."""
    if entity_type:
        return f"{namespace}:{check_group(entity_type)}:{{{ident}}}:e"
    return f"{namespace}:*{{{ident}}}:e"


class EntityIds:
    """The entity ids of the keys a ``SCAN`` of :func:`entity_pattern` gives (``fsredis ls``,
    ``GET /v1/entities``): each once (a scan may give a key twice), at most ``limit``;
    ``complete`` is False once one more than that was seen."""

    def __init__(self, namespace: str, limit: int) -> None:
        self.namespace, self.limit = namespace, limit
        self.found: dict[str, None] = {}
        self.complete = True

    def add(self, key: bytes | str) -> bool:
        """Take one scanned key; True when the limit is passed (scan no further)."""
        entity = entity_of(key.decode() if isinstance(key, bytes) else key, self.namespace)
        if entity is not None and entity not in self.found:
            if len(self.found) == self.limit:
                self.complete = False
                return True
            self.found[entity] = None
        return False

    def ids(self) -> list[str]:
        return sorted(self.found)


def v1_keys(namespace: str, entity_id: object) -> V1Keys:
    """The format-1 keys of ``entity_id``: ``<base>v``, ``x``, ``h``, ``w``."""
    base = _base(namespace, entity_id)
    return V1Keys(base + "v", base + "x", base + "h", base + "w")


def entity_of(key: str, namespace: str) -> str | None:
    """The entity id whose key (format 2 ``…:e`` or format 1 ``…:v``) is ``key``, or None."""
    prefix = namespace + ":"
    if not key.startswith(prefix) or key[-2:] not in (":e", ":v") or not key.endswith("}" + key[-2:]):
        return None
    group, _, tagged = key[len(prefix) : -2].rpartition(":")
    if not (tagged.startswith("{") and tagged.endswith("}")):
        return None
    ident = tagged[1:-1]
    return f"{group}:{ident}" if group else ident


SLOTS = 16384
_TAG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"


@functools.cache
def slot_tags() -> tuple[str, ...]:
    """For each cluster slot, the first 3-character string over ``0-9 A-Z a-z - _`` (in that
    order, the first character varying slowest) whose CRC16 puts it in the slot. Fixed for all
    versions: the change-log keys depend on it (docs/storage_format.md, "Change log")."""
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):  # the CRC16/XMODEM table Redis uses
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
        table[byte] = crc
    alphabet = np.frombuffer(_TAG_ALPHABET.encode(), dtype=np.uint8).astype(np.uint32)
    n = len(alphabet)
    index = np.arange(n**3)
    crc = np.zeros(n**3, dtype=np.uint32)
    for digit in (index // (n * n), index // n % n, index % n):
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ alphabet[digit]) & 0xFF]
    slots, first = np.unique(crc % SLOTS, return_index=True)
    if len(slots) != SLOTS:  # pragma: no cover - the alphabet covers every slot
        raise AssertionError("some slot has no 3-character tag")
    return tuple(
        _TAG_ALPHABET[i // (n * n)] + _TAG_ALPHABET[i // n % n] + _TAG_ALPHABET[i % n] for i in first.tolist()
    )


def log_key(namespace: str, slot: int) -> str:
    """The change log of the entities of ``slot``: ``<ns>:{<tag>}:log`` (:func:`slot_tags`)."""
    return f"{namespace}:{{{slot_tags()[slot]}}}:log"


@functools.lru_cache(maxsize=16)
def log_keys(namespace: str) -> tuple[str, ...]:
    """The change log of every slot, in slot order (made once per namespace: a drainer asks at
    every pass)."""
    return tuple(f"{namespace}:{{{tag}}}:log" for tag in slot_tags())
