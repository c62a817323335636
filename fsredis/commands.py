"""Sans-I/O command specs: what to send to the Lua library and how to read the reply.

Each operation is a pair of pure functions: one builds a :class:`Call` (function name, keys,
arguments), the other decodes the raw reply. Nothing here does I/O, so the clients (sync and
async) only execute calls, and this module is tested without Redis.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
import struct
import uuid
from datetime import datetime
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from fsredis.lazy import numpy as np

from fsredis import codec
from fsredis.config import FeatureStoreConfig
from fsredis import limits
from fsredis.errors import CorruptValue, FeatureStoreError, ValidationError, translate
from fsredis.keys import EntityKeys, RegistryKeys, log_key

NO_EXPIRY = -1
BATCH_ENTITIES_PER_CALL = 500
"""Entities per fs_get_batch call; larger batches are split and pipelined."""

TTL = float | None | Mapping[str, float | None]
"""A per-call TTL: seconds for every feature, or a map of feature name to seconds."""


Operation = Generator[Any, Any, Any]
"""An operation of the stores: yields requests (a command tuple, a list of them for a pipeline,
or a KeyScan) and receives their replies (fsredis/client.py drives it)."""


class Call(NamedTuple):
    """One call of a library function (a NamedTuple: cheap to build on the hot path)."""

    function: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    readonly: bool = False


class Command(NamedTuple):
    """A plain Redis command (PING, INFO, ...)."""

    args: tuple[Any, ...]


class Durable(NamedTuple):
    """Write commands whose replies count only once ``replicas`` replicas have them: each
    connection that carried some sends ``WAIT replicas timeout_ms`` after them. The drivers
    answer ``(replies, acks)``, ``acks[i]`` the replicas that confirmed command ``i`` (0 when its
    reply is an error)."""

    wire: list[tuple[Any, ...]]
    replicas: int
    timeout_ms: int


class KeyScan(NamedTuple):
    """Every key matching ``match`` (SCAN, on every primary of a cluster), or the first ``limit``
    found: for admin checks only."""

    match: str
    limit: int | None = None


@dataclass(frozen=True)
class Policy:
    """The parts of the config that shape calls."""

    scalar_ttl_ms: int
    embedding_ttl_ms: int
    max_versions: int
    dedup_window_ms: int
    max_value_bytes: int
    embedding_dtype: str
    history_limit: int
    change_log: str | None = None
    """The namespace whose change log writes append to (``config.change_log``), or None."""
    embedding_features: tuple[str, ...] = ()
    """Name patterns whose numeric lists are embeddings (``config.embedding_features``)."""
    options: bytes = b""
    """The options every write shares, a msgpack fixmap (lua/lib/parse_options.lua);
    :meth:`pack_options` adds a call's own entries to it."""

    def __post_init__(self) -> None:
        shared = {
            "max_versions": self.max_versions, "dedup_ms": self.dedup_window_ms,
            "max_bytes": self.max_value_bytes, "scalar_ttl": self.scalar_ttl_ms,
            "embedding_ttl": self.embedding_ttl_ms,
        }
        object.__setattr__(self, "options", codec.pack(shared))

    @classmethod
    def from_config(cls, config: FeatureStoreConfig) -> Policy:
        return cls(
            scalar_ttl_ms=_ttl_ms("default_ttl", config.default_ttl),
            embedding_ttl_ms=_ttl_ms("embedding_ttl", config.embedding_ttl),
            max_versions=config.max_versions if config.enable_versioning else 0,
            dedup_window_ms=int(config.dedup_window * 1000),
            max_value_bytes=config.max_value_bytes,
            embedding_dtype=config.embedding_dtype,
            history_limit=max(config.max_versions, 1),
            change_log=config.namespace if config.change_log else None,
            embedding_features=config.embedding_features,
        )

    @functools.cached_property
    def _embedding_names(self) -> re.Pattern[str] | None:
        patterns = self.embedding_features
        return re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None

    def as_embedding(self, name: str, value: Any) -> Any:
        """``value`` as a float array when ``name`` matches ``embedding_features`` and it is a
        non-empty list or tuple of numbers (not booleans); else ``value`` as it is."""
        pattern = self._embedding_names
        if (pattern is None or not isinstance(value, (list, tuple)) or not value
                or not all(type(x) in (int, float) or isinstance(x, (np.integer, np.floating)) for x in value)
                or not pattern.fullmatch(name)):
            return value
        return np.asarray(value, dtype=np.float64)

    def keys_of(self, keys: EntityKeys) -> tuple[str, ...]:
        """The keys of a writing call about one entity: its hash, and its slot's change log when
        the log is on (lua/lib/parse_log_key.lua)."""
        if self.change_log is None:
            return (keys.entity,)
        return keys.entity, log_key(self.change_log, keys.slot)

    def pack_options(self, **own: Any) -> bytes:
        """The options map of one call: the shared entries and ``own`` (those not None)."""
        extra = b"".join(codec.pack(k) + codec.pack(v) for k, v in own.items() if v is not None)
        count = sum(v is not None for v in own.values())
        return bytes((self.options[0] + count,)) + self.options[1:] + extra  # a fixmap: under 16 entries


def _ttl_ms(name: str, seconds: float | None) -> int:
    if seconds is None:
        return NO_EXPIRY
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ValidationError(name, "ttl", f"a TTL is a number of seconds or None, got {seconds!r}")
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValidationError(name, "ttl", f"a TTL must be at least 1 ms, got {seconds!r} s")
    if ms > limits.TTL_MS:
        raise ValidationError(
            name, "ttl", f"a TTL is at most {limits.TTL_MS // 1000} s (100 years), got {seconds!r} s; None: never expires"
        )
    return ms


def pack_meta(
    source: str | None,
    lineage: Mapping[str, Any] | None,
    per_feature: Mapping[str, Mapping[str, Any]] | None = None,
) -> bytes:
    """The lineage map stored with each version: ``source`` plus any extra lineage fields, and
    ``per_feature`` lineage (name -> fields) that only that feature's record gets."""
    meta: dict[str, Any] = dict(lineage or {})
    if source is not None:
        meta["source"] = source
    for key, value in meta.items():
        if not isinstance(key, str) or key == "features":
            raise ValidationError(repr(key), "lineage", "lineage keys are strings other than 'features'")
        codec.encode_value(f"lineage.{key}", value)
    if per_feature:
        meta["features"] = per_feature
    packed = codec.pack(meta)
    if len(packed) > limits.META_BYTES:
        raise ValidationError("-", "lineage", f"the lineage takes {len(packed)} bytes, more than {limits.META_BYTES}")
    return packed


# -- write -------------------------------------------------------------------------------------


class WriteResult(NamedTuple):
    """What a write did. Always true (``if fs.write_features(...)`` keeps working).

    ``versions`` maps each feature to the version it got; ``history_only`` names the features
    whose event time was older than their current value's: recorded in history (and lineage),
    not made current. ``applied`` is False when the write id had already been applied (a retry):
    nothing was written again and ``versions`` is empty."""

    versions: dict[str, int]
    history_only: frozenset[str] = frozenset()
    applied: bool = True

    def __bool__(self) -> bool:
        return True


def new_write_id() -> str:
    """A fresh write id: 128 random bits, hex."""
    return uuid.uuid4().hex


def event_ms(name: str, value: Any, rule: str = "event_time") -> int | None:
    """A time as integer ms since the epoch: a timezone-aware datetime, a ``numpy.datetime64``,
    or a number of seconds since the epoch (None: the server's time). ValidationError(name,
    rule) for anything else, a naive datetime included: whose clock it means cannot be known."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValidationError(name, rule, f"a time is finite, got {value!r}")
        ms = round(value * 1000)
    elif not isinstance(value, (datetime, np.datetime64)):
        raise ValidationError(
            name, rule, f"a time is a timezone-aware datetime or seconds since the epoch, not {type(value).__name__}"
        )
    else:
        try:
            ms = codec.timestamp_micros(name, value) // 1000
        except ValidationError as exc:
            raise ValidationError(name, rule, exc.detail) from None
    if not -limits.TIME_MS <= ms <= limits.TIME_MS:
        raise ValidationError(name, rule, f"times lie within {limits.TIME_MS // 31_536_000_000} years of 1970")
    return ms


def _ttl_option(features: Mapping[str, Any], ttl: TTL) -> int | dict[str, int] | None:
    """The ``ttl`` option of a write: ms for every feature, a map name -> ms, or None."""
    if ttl is None:
        return None
    if not isinstance(ttl, Mapping):
        return _ttl_ms("ttl", ttl)
    strays = sorted(map(str, set(ttl) - set(features)))
    if strays:
        raise ValidationError(strays[0], "ttl", f"the ttl map names features not in this write: {strays}")
    return batch_ttl(ttl)


def _check_write_id(write_id: object) -> str:
    try:
        if isinstance(write_id, str) and 0 < len(write_id.encode()) <= limits.WRITE_ID_BYTES:
            return write_id
    except UnicodeEncodeError:  # a lone surrogate
        pass
    raise ValidationError("-", "write_id", f"a write id is a string of 1-{limits.WRITE_ID_BYTES} bytes of UTF-8")


def _pairs(features: Mapping[str, Any], policy: Policy) -> list[Any]:
    """name, encoded value, ... of a write (bad values raise before anything is sent)."""
    if not isinstance(features, Mapping) or not features:
        raise ValidationError("-", "features", "write_features takes a non-empty mapping of name -> value")
    if len(features) > limits.NAMES:
        raise ValidationError("-", "features", f"one write takes at most {limits.NAMES} features, got {len(features)}")
    encode, dtype, lists = codec.encode_value, policy.embedding_dtype, policy.as_embedding
    out: list[Any] = []
    for name, value in features.items():
        if type(name) is not str:
            raise ValidationError(repr(name), "name", "feature names are strings")
        if not name.isascii():
            raise ValidationError(name, "name", "names are 1-128 characters of A-Z a-z 0-9 _ . - and start with a letter or _")
        if type(value) is list or type(value) is tuple:
            value = lists(name, value)
        out += (name, encode(name, value, dtype))
    return out


def write(
    keys: EntityKeys,
    features: Mapping[str, Any],
    policy: Policy,
    *,
    write_id: str,
    ttl: TTL = None,
    meta: bytes = b"\x80",
    event_time: Any = None,
) -> Call:
    """fs_write: every feature encoded here (bad values raise before anything is sent)."""
    options = policy.pack_options(
        id=_check_write_id(write_id), event_time=event_ms("event_time", event_time), ttl=_ttl_option(features, ttl)
    )
    return Call("fs_write", policy.keys_of(keys), (options, meta, *_pairs(features, policy)))


def decode_write(names: Sequence[str], raw: list[int]) -> WriteResult:
    """The WriteResult of an fs_write reply ``{1, versions...}`` or ``{0}`` (already applied)."""
    if not raw[0]:
        return WriteResult({}, frozenset(), False)
    versions = dict(zip(names, (abs(v) for v in raw[1:])))
    late = frozenset(name for name, v in zip(names, raw[1:]) if v < 0)
    return WriteResult(versions, late)


def write_batch(
    rows: Sequence[tuple[EntityKeys, str, int | None, list[Any]]], policy: Policy, *, ttl: Any = None, meta: bytes = b"\x80"
) -> Call:
    """fs_write_batch of rows ``(keys, write id, event ms or None, [name, value, ...])``, encoded by
    :func:`write_row`; ``ttl`` as the option (ms, or a map name -> ms)."""
    args: list[Any] = [policy.pack_options(ttl=ttl), meta]
    keys: list[str] = []
    for entity, write_id, event, pairs in rows:
        keys += policy.keys_of(entity)
        args += (write_id, "" if event is None else event, len(pairs) // 2, *pairs)
    return Call("fs_write_batch", tuple(keys), tuple(args))


def write_row(
    keys: EntityKeys, features: Mapping[str, Any], policy: Policy, *, write_id: str, event_time: Any = None
) -> tuple[EntityKeys, str, int | None, list[Any]]:
    """One row of :func:`write_batch`, encoded and checked."""
    return keys, _check_write_id(write_id), event_ms("event_time", event_time), _pairs(features, policy)


def batch_ttl(ttl: TTL) -> Any:
    """The ttl option of a batch write: every row shares it (a map names features of any row)."""
    if ttl is None:
        return None
    if not isinstance(ttl, Mapping):
        return _ttl_ms("ttl", ttl)
    return {name: _ttl_ms(name, seconds) for name, seconds in ttl.items() if seconds is not None} or None


def naming(error: FeatureStoreError, entity_id: str) -> FeatureStoreError:
    """``error``, naming ``entity_id`` when it is a CorruptValue from a Lua reply (which knows
    only the feature)."""
    if isinstance(error, CorruptValue) and error.entity == "-":
        named = CorruptValue(entity_id, error.feature, error.detail, error.rule)
        named.__cause__ = error.__cause__
        return named
    return error


def decode_write_batch(
    names: Sequence[Sequence[str]], raw: list[Any], entities: Sequence[str] | None = None
) -> list[WriteResult | FeatureStoreError]:
    """One WriteResult per row of an fs_write_batch reply, or the error that refused the row
    (a CorruptValue names the row's entity, from ``entities``)."""
    out: list[WriteResult | FeatureStoreError] = []
    for i, (row, reply) in enumerate(zip(names, raw)):
        if isinstance(reply, Exception):
            error = translate(reply)
            out.append(naming(error, entities[i]) if entities is not None else error)
        else:
            out.append(decode_write(row, reply))
    return out


# -- reads -------------------------------------------------------------------------------------


def get(keys: EntityKeys, names: Sequence[str] | None) -> Call:
    """fs_get of ``names`` (None: every live feature): values without heads, checked on the server."""
    return Call("fs_get", tuple(keys), tuple(names or ()), readonly=True)


def get_direct(keys: EntityKeys, names: Sequence[str]) -> Command:
    """The fields of ``names`` as stored, by one plain HMGET (see :func:`decode_direct`)."""
    return Command(("HMGET", keys.entity, *names))


def _live_rows(names: Sequence[str], replies: Iterable[tuple[float, Sequence[Sequence[bytes | None]]]]) -> list[dict[str, Any]]:
    """The hot path of every read: for each reply ``(now_ms, rows)`` (the server's time, and rows
    of stored fields as HMGET gives them, in ``names`` order), per row name -> value of the fields
    live at that reply's ``now_ms``. One pass reads each head's expiry in place; the msgpack values
    of all rows of all replies are then decoded in one ``unpackb``, tagged ones (embeddings,
    timestamps) one by one. IndexError or ValueError for a field too short for its head or a value
    that cannot be read: the caller then takes the general path, which names it."""
    head, tag, word, bits = codec.HEAD, codec.TAG, codec.HEAD_WORD, codec.EXPIRY_BITS
    kept_rows: list[list[str]] = []
    values: list[bytes] = []
    tagged: list[tuple[int, bytes]] = []  # (position in values, field)
    for now_ms, rows in replies:
        for fields in rows:
            kept: list[str] = []
            for name, field in zip(names, fields):
                if field is not None:
                    first = field[head]  # (IndexError when the field is too short)
                    expires = word(field)[0] & bits
                    if not expires or expires > now_ms:
                        kept.append(name)
                        if first == tag:
                            tagged.append((len(values), field))
                            values.append(b"\xc0")
                        else:
                            values.append(field[head:])
            kept_rows.append(kept)
    decoded = codec.unpack_values(len(values), b"".join(values)) if values else []
    for at, field in tagged:
        decoded[at] = codec.decode_value(memoryview(field)[head:])
    found = iter(decoded)
    return [dict(zip(kept, found)) for kept in kept_rows]


def decode_direct(names: Sequence[str], raw: list[bytes | None], now_ms: float, entity_id: str = "-") -> dict[str, Any]:
    """:func:`decode_get` of an HMGET of stored fields: those expired at ``now_ms`` (an upper
    bound of the server's clock, fsredis/clock.py) are dropped."""
    try:
        return _live_rows(names, ((now_ms, (raw,)),))[0]
    except (IndexError, ValueError):  # a damaged field: the general path names it
        return decode_get(list(names), [codec.live(field, now_ms) for field in raw], entity_id)


class Unreadable(NamedTuple):
    """Stands in a decoded row for a stored value that cannot be read (see :func:`corrupt`)."""

    detail: str


def _decode_each(raws: Sequence[bytes]) -> list[Any]:
    """Values decoded one by one, each unreadable one as an :class:`Unreadable`."""
    out: list[Any] = []
    for raw in raws:
        try:
            out.append(codec.decode_value(raw))
        except ValueError as exc:
            out.append(Unreadable(str(exc)))
    return out


def decode_all(raws: list[bytes]) -> tuple[list[Any], bool]:
    """The values decoded, and whether all were readable (else some are :class:`Unreadable`)."""
    try:
        return codec.decode_values(raws), True
    except ValueError:  # one is unreadable: find which, keep the others
        return _decode_each(raws), False


def corrupt(entity_id: str, row: dict[str, Any]) -> CorruptValue | None:
    """Take the unreadable values out of a decoded row; the error for the first, or None."""
    bad = [name for name, value in row.items() if type(value) is Unreadable]
    if not bad:
        return None
    error = CorruptValue(entity_id, bad[0], row[bad[0]].detail)
    for name in bad:
        del row[name]
    return error


def decode_get(names: Sequence[str] | None, raw: list[bytes | None], entity_id: str = "-") -> dict[str, Any]:
    """Name -> value of the features found; missing and expired ones are absent. CorruptValue
    names the entity and feature of a stored value that cannot be read."""
    if names is None:
        row, readable = decode_live(raw)
    else:
        rows, readable = decode_rows(names, raw, 1)
        row = rows[0]
    error = None if readable else corrupt(entity_id, row)
    if error is not None:
        raise error
    return row


def decode_live(raw: list[bytes]) -> tuple[dict[str, Any], bool]:
    """Name -> value from the flat reply of fs_get without names, and whether every value was
    readable (else the unreadable ones are :class:`Unreadable`: see :func:`corrupt`)."""
    values, readable = decode_all(raw[1::2])
    return dict(zip((name.decode() for name in raw[::2]), values)), readable


def decode_rows(names: Sequence[str], flat: list[bytes | None], rows: int) -> tuple[list[dict[str, Any]], bool]:
    """``rows`` dicts of name -> value from ``flat``, ``len(names)`` replies per row (None: absent).
    All values are decoded in one go (codec.decode_values), the rows then cut from the result; an
    unreadable value is an :class:`Unreadable` (the others are still decoded), and the flag that
    says whether there is none."""
    width = len(names)
    present: list[bool] | None = None
    if None in flat:
        present = [value is not None for value in flat]
        flat = [b"\xc0" if value is None else value for value in flat]
    decoded, readable = decode_all(flat)  # type: ignore[arg-type]
    if present is None:
        return [dict(zip(names, decoded[i : i + width])) for i in range(0, rows * width, width)], readable
    return [
        {name: value for name, value, here in zip(names, decoded[i : i + width], present[i : i + width]) if here}
        for i in range(0, rows * width, width)
    ], readable


def get_batch(entity_keys: Iterable[EntityKeys], names: Sequence[str]) -> Call:
    """fs_get_batch of the same ``names`` for several entities."""
    return Call("fs_get_batch", tuple(keys.entity for keys in entity_keys), tuple(names), readonly=True)


GET_MANY_NAMES = 1000
"""Feature names at most in one fs_get_many call."""


def get_many(keys: Sequence[str], names: Sequence[str]) -> Call:
    """fs_get_many: fs_get_batch of entity hashes ``keys`` passed as arguments (so they may lie
    in any slots of one cluster node); its reply has fs_get_batch's shape, but an entity the node
    does not serve now gets an error reply instead of its fields."""
    return Call("fs_get_many", (), (len(names), *names, *keys), readonly=True)


def batch_groups(
    ids: Sequence[Any], keys: Sequence[EntityKeys], cluster: bool
) -> list[tuple[list[Any], list[EntityKeys]]]:
    """Split a batch read into calls: chunks of BATCH_ENTITIES_PER_CALL entities; on a cluster,
    also one group per hash slot, since every key of one Lua call must share a slot."""
    step = BATCH_ENTITIES_PER_CALL
    if not cluster:
        return [(list(ids[i : i + step]), list(keys[i : i + step])) for i in range(0, len(ids), step)]
    slots: dict[int, tuple[list[str], list[EntityKeys]]] = {}
    for entity_id, entity in zip(ids, keys):
        group = slots.get(slot := entity.slot)
        if group is None:
            slots[slot] = ([entity_id], [entity])
        else:
            group[0].append(entity_id)
            group[1].append(entity)
    out: list[tuple[list[Any], list[EntityKeys]]] = []
    for group in slots.values():
        if len(group[0]) <= step:
            out.append(group)
            continue
        # A call goes again alone when the cluster moves under it: a later call of the same slot
        # may then land first. Rows of one entity (write_rows, ingest) therefore stay in one call,
        # where they apply in order; the entities of a slot keep their rows' order.
        order = sorted(range(len(group[0])), key=lambda i: group[1][i].entity)
        chunk: tuple[list[Any], list[EntityKeys]] = ([], [])
        for n, i in enumerate(order):
            entity = group[1][i]
            if len(chunk[0]) >= step and entity.entity != chunk[1][-1].entity:
                out.append(chunk)
                chunk = ([], [])
            chunk[0].append(group[0][i])
            chunk[1].append(entity)
        out.append(chunk)
    return out


def decode_batches(
    entity_ids: Sequence[Sequence[str]], names: Sequence[str], raws: Sequence[list[Any]]
) -> tuple[dict[str, dict[str, Any]], bool]:
    """Entity id -> (name -> value) for the entities of several fs_get_batch replies at once
    (``entity_ids[i]`` the entities of ``raws[i]``: the server time, then the stored fields of
    each entity), each reply's fields judged by its own server's time; and whether every value was
    readable (else the unreadable ones are :class:`Unreadable`: see :func:`corrupt`). Expired
    fields are dropped."""
    ids = [entity for chunk in entity_ids for entity in chunk]
    try:
        return dict(zip(ids, _live_rows(names, [(raw[0], raw[1:]) for raw in raws]))), True
    except (IndexError, ValueError):  # a damaged field: the general path marks it (and only it)
        pass
    live = codec.live
    flat = [live(field, raw[0]) for raw in raws for fields in raw[1:] for field in fields]
    rows, readable = decode_rows(names, flat, len(ids))
    return dict(zip(ids, rows)), readable


def check_names(names: object, what: str = "feature_names") -> list[str]:
    """A list of names from any iterable of strings (a lone string is refused). Feature names
    with '#' are refused too: no feature can have one, and the entity's bookkeeping fields do."""
    if type(names) is list and 0 < len(names) <= limits.NAMES:  # the common case, checked in C loops
        try:
            if "#" not in "".join(names) and min(map(len, names)) > 0 and max(map(len, names)) <= 128:
                return names
        except TypeError:  # not all strings: the general path says which
            pass
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise ValidationError(what, "type", f"{what} is a list of strings, got {type(names).__name__}")
    out = list(names)
    for name in out:
        check_name(name)
    if len(out) > limits.NAMES:
        raise ValidationError(what, "count", f"at most {limits.NAMES} names in one call, got {len(out)}")
    return out


def check_name(name: object) -> str:
    """``name`` if it can name a feature in a read, lineage, rollback or delete."""
    if not isinstance(name, str):
        raise ValidationError(repr(name), "name", "feature names are strings")
    if not name or len(name) > 128:
        raise ValidationError(name[:256], "name", "feature names are 1-128 characters")
    if "#" in name:
        raise ValidationError(name, "name", "'#' is reserved and never part of a feature name")
    return name


# -- lineage and rollback ----------------------------------------------------------------------


def show(keys: EntityKeys, names: Sequence[str] | None) -> Call:
    """fs_show: the live features of one entity as JSON people can read (lua/fs_show.lua)."""
    return Call("fs_show", tuple(keys), tuple(names or ()), readonly=True)


def lineage(keys: EntityKeys, name: str, limit: int) -> Call:
    """fs_lineage: the newest ``limit`` versions of one feature."""
    check_name(name)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= limits.MAX_VERSIONS:
        raise ValidationError(name, "limit", f"limit is an integer from 1 to {limits.MAX_VERSIONS}, got {limit!r}")
    return Call("fs_lineage", tuple(keys), (name, limit), readonly=True)


def _seconds(ms: int) -> float | None:
    return None if ms <= 0 else ms / 1000.0


def feature_lineage(meta: Any, name: str) -> dict[str, Any]:
    """The lineage fields of feature ``name`` in a write's meta map: the write's own, with the
    entries its ``features`` map gives that feature merged over them (string keys)."""
    if not isinstance(meta, dict):
        return {}
    fields = {str(key): field for key, field in meta.items() if key != "features"}
    own = meta.get("features")
    if isinstance(own, dict) and isinstance(own.get(name), dict):
        fields.update({str(key): field for key, field in own[name].items()})
    return fields


def decode_lineage(entity_id: str, name: str, raw: list[Any]) -> dict[str, Any]:
    """The lineage dict of the public API: versions newest first, each with its value, event
    time, write time and the lineage fields of its write."""
    top, current, now_ms = (int(v) for v in raw[:3])
    versions = []
    expiry = None
    try:
        for version, event, expires, written, write_id, meta, value in raw[3:]:
            fields = feature_lineage(codec.unpack(meta) if meta else {}, name)
            entry = dict(fields)  # lineage fields; the version's own win
            entry.update(
                version=int(version),
                value=codec.decode_value(value),
                timestamp=_seconds(int(written)),
                event_time=event / 1000.0,
                source=fields.get("source"),
                write_id=write_id.decode(errors="replace") if write_id else None,
                expires_at=_seconds(int(expires)),
                expired=0 < int(expires) <= now_ms,
                current=int(version) == current,
            )
            if entry["current"]:
                expiry = entry["expires_at"]
            versions.append(entry)
    except (ValueError, TypeError, OverflowError, struct.error) as exc:
        raise CorruptValue(entity_id, name, f"a history record is unreadable: {exc}", "record") from None
    return {
        "entity_id": entity_id,
        "feature": name,
        "current_version": current or top,
        "latest_version": top,
        "expires_at": expiry,
        "versions": versions,
    }


def rollback(
    keys: EntityKeys, name: str, version: int, policy: Policy, *, write_id: str, meta: bytes
) -> Call:
    """fs_rollback of ``name`` to ``version``, appended as a new version."""
    check_name(name)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= limits.VERSION:
        raise ValidationError(name, "version", f"versions are integers from 1 to {limits.VERSION}, got {version!r}")
    return Call("fs_rollback", policy.keys_of(keys), (policy.pack_options(id=_check_write_id(write_id)), meta, name, version))


def decode_rollback(raw: int | list[int]) -> int:
    """The new version (the current one when the write id had already been applied)."""
    return int(raw[1]) if isinstance(raw, list) else int(raw)


def delete(keys: EntityKeys, names: Sequence[str] | None, policy: Policy) -> Call:
    """fs_delete of ``names``, or of the whole entity when None."""
    return Call("fs_delete", policy.keys_of(keys), tuple(names or ()))


def version() -> Call:
    """fs_version: the version of the library loaded on the server."""
    return Call("fs_version", (), (), readonly=True)


# -- the schema registry -----------------------------------------------------------------------


def registry_put(
    keys: RegistryKeys, namespace: str, expected: int, author: str, changes: str, strict: bool,
    fields: Mapping[str, str],
) -> Call:
    """fs_registry_put: store a registry state (``fields``: ``group:name`` -> JSON, "" removes)."""
    args: list[Any] = [namespace, expected, author, changes, int(strict)]
    for name, definition in fields.items():
        args += (name, definition)
    return Call("fs_registry_put", tuple(keys), tuple(args))


def registry_version(namespace: str) -> Call:
    """fs_registry_version: the registry version of ``namespace`` the loaded library enforces."""
    return Call("fs_registry_version", (), (namespace,), readonly=True)
