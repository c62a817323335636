"""As-of reads: features as they were at a time T, from the history each entity keeps.

Sans-I/O like :mod:`fsredis.commands`: calls to build and replies to decode; the clients run them.
Per feature, the answer is the version with the newest event time at or before T (on a tie, the
later write), dropped when it had expired by T. When a version that ``max_versions`` cut from the
history could have been the answer, the feature is reported *beyond retention* instead: never
answered with another version (docs/storage_format.md, "As-of reads").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from fsredis.lazy import numpy as np

from fsredis import commands, limits
from fsredis.commands import Call
from fsredis.errors import CorruptValue, FeatureStoreError, translate
from fsredis.keys import EntityKeys


class AsOf(dict):  # type: ignore[type-arg]
    """Name -> value of the features of one entity at a time T, like a ``get_features`` result.

    ``beyond_retention`` names the requested features whose value at T the kept history cannot
    tell (versions old enough were cut by ``max_versions``); they are absent from the mapping, as
    are features that had no live version at T."""

    beyond_retention: frozenset[str]

    def __init__(self, found: dict[str, Any], beyond: Iterable[str] = ()) -> None:
        super().__init__(found)
        self.beyond_retention = frozenset(beyond)

    def __repr__(self) -> str:
        if not self.beyond_retention:
            return f"AsOf({dict.__repr__(self)})"
        return f"AsOf({dict.__repr__(self)}, beyond_retention={sorted(self.beyond_retention)})"


def as_of_ms(value: Any) -> int:
    """The time of an as-of read in ms since the epoch: a timezone-aware datetime (a pandas
    Timestamp too), a ``numpy.datetime64`` or seconds since the epoch. A naive datetime is
    refused (ValidationError, rule ``as_of``): whose clock it means cannot be known."""
    if value is None:
        raise TypeError("as_of is a time, not None")
    ms = commands.event_ms("as_of", value, "as_of")
    assert ms is not None
    return ms


def get_as_of(entities: Sequence[EntityKeys], names: Sequence[str], ms: int) -> Call:
    """fs_get_as_of of ``names`` for the entities (one slot on a cluster) at ``ms``."""
    return Call("fs_get_as_of", tuple(keys.entity for keys in entities), (ms, *names), readonly=True)


def decode_as_of(
    entity_ids: Sequence[Sequence[str]], names: Sequence[str], raws: Sequence[list[Any]]
) -> tuple[dict[str, AsOf], dict[str, FeatureStoreError], bool]:
    """Entity id -> :class:`AsOf` for the entities of several fs_get_as_of replies
    (``entity_ids[i]`` those of ``raws[i]``: T, the beyond-retention pairs, then one row of fields
    per entity, or the error of an entity that cannot be read); those errors by entity (naming
    it); and whether every value was readable (see :func:`commands.decode_batches`, which also
    drops the versions expired by T)."""
    errors: dict[str, FeatureStoreError] = {}
    blank = [None] * len(names)
    cleaned = []
    for chunk, raw in zip(entity_ids, raws):
        rows = raw[2:]
        for entity, row in zip(chunk, rows):
            if isinstance(row, Exception):
                error = row if isinstance(row, FeatureStoreError) else translate(row)
                errors[entity] = commands.naming(error, entity)
        cleaned.append([raw[0], *(blank if isinstance(row, Exception) else row for row in rows)])
    found, readable = commands.decode_batches(entity_ids, names, cleaned)
    beyond: dict[str, set[str]] = {}
    for chunk, raw in zip(entity_ids, raws):
        pairs = raw[1]
        for k in range(0, len(pairs), 2):
            beyond.setdefault(chunk[pairs[k] - 1], set()).add(names[pairs[k + 1] - 1])
    return {e: AsOf(row, beyond.get(e, ())) for e, row in found.items()}, errors, readable


def feature_names(fields: Iterable[bytes | str]) -> list[str]:
    """The features an entity has a current value or a history of, from its hash's field names
    (``<name>``, ``<name>#``; bookkeeping fields start with '#')."""
    names = set()
    for field in fields:
        name = field.decode() if isinstance(field, bytes) else field
        if name and not name.startswith("#"):
            names.add(name[:-1] if name.endswith("#") else name)
    return sorted(names)


def get_history(entities: Sequence[EntityKeys], names: Sequence[str]) -> Call:
    """fs_get_history of ``names`` for the entities (one slot on a cluster)."""
    return Call("fs_get_history", tuple(keys.entity for keys in entities), tuple(names), readonly=True)


NO_CUT = -(2**63)  # (the least int64)
"""In :class:`Histories` ``cuts``: no version of that entity's feature was trimmed."""


class Histories(NamedTuple):
    """The kept versions of one feature for several entities (an fs_get_history reply), flat and
    ordered by (entity, event time, version): the order in which an as-of read ranks them.
    ``keys`` joins entity and event time in one sortable int64 (entity << 48 | event + 2^47)."""

    keys: np.ndarray
    events: np.ndarray
    expiries: np.ndarray
    values: np.ndarray
    cuts: np.ndarray
    """Per entity: the newest event time trimmed from its history, or NO_CUT."""

    def at(self, entity: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (entity position, time): the position in ``values`` of the answer of an
        as-of read (-1: none, or expired by then), and whether it is beyond retention."""
        cut = self.cuts[entity]
        if not len(self.keys):  # nothing kept: beyond retention where versions were trimmed
            return np.full(len(times), -1), cut != NO_CUT
        times = np.clip(times, -limits.TIME_MS, limits.TIME_MS)  # every event lies within; the order holds
        last = np.searchsorted(self.keys, (entity << 48) | (times + _OFFSET), side="right") - 1
        at = np.maximum(last, 0)
        found = (last >= 0) & ((self.keys[at] >> 48) == entity)
        beyond = (cut != NO_CUT) & (~found | (self.events[at] < cut))
        expiry = self.expiries[at]
        live = found & ~beyond & ((expiry == 0) | (expiry > times))
        return np.where(live, last, -1), beyond


_OFFSET = 2**47  # events and times (within +-(2^47 - 1) ms) made positive, below 2^48


def decode_histories(entity_ids: Sequence[str], names: Sequence[str], rows: Sequence[list[Any]]) -> dict[str, Histories]:
    """Name -> :class:`Histories` of ``entity_ids`` from their entries of fs_get_history replies
    (``rows[i]`` that of ``entity_ids[i]``). CorruptValue naming the entity and feature when a
    stored value cannot be read."""
    out = {}
    for j, name in enumerate(names):
        items = [row[j] for row in rows]
        packed = b"".join(item[1] for item in items)
        triples = np.frombuffer(packed, dtype="<i8").reshape(-1, 3)
        counts = np.fromiter((len(item) - 2 for item in items), dtype=np.int64, count=len(items))
        owner = np.repeat(np.arange(len(items), dtype=np.int64), counts)
        decoded, readable = commands.decode_all([raw for item in items for raw in item[2:]])
        if not readable:
            bad = next(i for i, v in enumerate(decoded) if type(v) is commands.Unreadable)
            raise CorruptValue(entity_ids[owner[bad]], name, decoded[bad].detail)
        values = np.empty(len(decoded), dtype=object)
        for i, value in enumerate(decoded):
            values[i] = value
        order = np.lexsort((triples[:, 0], triples[:, 1], owner))  # entity, event time, version
        events = triples[order, 1]
        cuts = np.fromiter((NO_CUT if item[0] is None else int(item[0]) for item in items), dtype=np.int64, count=len(items))
        out[name] = Histories((owner[order] << 48) | (events + _OFFSET), events, triples[order, 2], values[order], cuts)
    return out
