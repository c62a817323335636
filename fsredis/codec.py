"""Every byte fsredis stores: how a feature value becomes bytes and back.

* Scalars (``None``, ``bool``, ``int``, ``float``, ``str``) and lists of them are msgpack, packed
  with ``use_bin_type=False`` so that Lua's ``cmsgpack`` can read them.
* Embeddings (1-D float arrays) are a 4-byte tag then raw little-endian floats:
  ``C1 'e' '4' 00`` + float32, or ``C1 'e' '2' 00`` + float16. They are decoded with
  ``numpy.frombuffer`` without copying; the 4-byte tag keeps the floats aligned. The arrays
  returned are read-only views of the reply (``.copy()`` one to change it).
* Timestamps (timezone-aware ``datetime``, ``numpy.datetime64``) are ``C1 't' 00 00`` + int64
  little-endian microseconds since the epoch (UTC), and come back as UTC ``datetime``.

``0xC1`` is the one byte msgpack never uses, so a value is a tagged blob exactly when it starts
with it. NaN and infinity are refused everywhere. Nothing here ever uses pickle or eval.

Stored as an entity's current value, each value follows a 24-byte head (:data:`HEAD`): its
expiry, event time, version and record, four int48 little-endian numbers (the expiry first, so
a reader checks it with one slice). 24 bytes keep an embedding's floats 4-byte aligned.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime, timedelta, timezone
from typing import Any

import msgpack
from fsredis.lazy import numpy as np

from fsredis.errors import ValidationError

EMBEDDING_F32 = b"\xc1e4\x00"
EMBEDDING_F16 = b"\xc1e2\x00"
TIMESTAMP = b"\xc1t\x00\x00"
_TAG = 0xC1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_EMBEDDING_TAGS = {"float32": EMBEDDING_F32, "float16": EMBEDDING_F16}
_DTYPES = {EMBEDDING_F32: "<f4", EMBEDDING_F16: "<f2"}
_packb = msgpack.Packer(use_bin_type=False, autoreset=True).pack
_SCALARS = (type(None), bool, int, float, str)
_INT64 = 2**63


def pack(obj: Any) -> bytes:
    """msgpack in the form Lua reads (no bin type)."""
    return _packb(obj)


def unpack(raw: bytes) -> Any:
    """msgpack written by Lua or by :func:`pack`; strings come back as ``str``."""
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def _no_map(pairs: Any) -> Any:
    raise ValueError("a map is not a feature value")


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack ext type {code} is not a feature value")


_VALUE_HOOKS = {"raw": False, "object_pairs_hook": _no_map, "ext_hook": _no_ext}
_UNREADABLE = (ValueError, KeyError, IndexError, TypeError, OverflowError, msgpack.UnpackException)


def encode_value(name: str, value: Any, embedding_dtype: str = "float32") -> bytes:
    """Encode one feature value; raise ValidationError naming ``name`` if it cannot be stored."""
    kind = type(value)
    if kind is float:
        if value - value == 0.0:  # finite: inf - inf and nan - nan are nan
            return _packb(value)
    elif kind is int:
        if -_INT64 <= value < _INT64:
            return _packb(value)
        raise ValidationError(name, "range", "integers must fit in int64")
    elif kind is str or kind is bool or value is None:
        return _pack_checked(name, value)
    if isinstance(value, np.ndarray):
        return _encode_embedding(name, value, embedding_dtype)
    if isinstance(value, (datetime, np.datetime64)):
        return TIMESTAMP + timestamp_micros(name, value).to_bytes(8, "little", signed=True)
    if isinstance(value, (list, tuple)):
        items = [_scalar(name, item) for item in value]
        return _pack_checked(name, items)
    return _pack_checked(name, _scalar(name, value))


def decode_value(raw: bytes) -> Any:
    """Decode what :func:`encode_value` stored; ValueError (naming what is wrong) for bytes that
    are not a stored value (written around the Lua checks, or damaged)."""
    try:
        if raw[0] != _TAG:
            return msgpack.unpackb(raw, **_VALUE_HOOKS)
        tag = bytes(raw[:4])
        if tag == TIMESTAMP and len(raw) == 12:
            return _EPOCH + int.from_bytes(raw[4:12], "little", signed=True) * _MICROSECOND
        return np.frombuffer(raw, dtype=_DTYPES[tag], offset=4)
    except _UNREADABLE as exc:
        raise ValueError(f"the stored value is unreadable ({type(exc).__name__}: {exc})"[:300]) from None


def unpack_values(count: int, joined: bytes) -> list[Any]:
    """``count`` msgpack values stored back to back (stored values are whole msgpack objects,
    checked on write), decoded in one ``unpackb``; ValueError when they are not."""
    try:
        return msgpack.unpackb(b"\xdd" + count.to_bytes(4, "big") + joined, **_VALUE_HOOKS)  # type: ignore[no-any-return]
    except _UNREADABLE as exc:
        raise ValueError(f"a stored value is unreadable ({type(exc).__name__})") from None


def decode_values(raws: list[bytes]) -> list[Any]:
    """Decode many stored values at once: the msgpack ones in one ``unpackb`` of an array
    made by joining them (stored values are whole msgpack objects, checked on write), the tagged
    ones one by one. ValueError when any is unreadable (decode them one by one to find which)."""
    plain = [raw for raw in raws if raw[0] != _TAG]
    decoded = unpack_values(len(plain), b"".join(plain))
    if len(plain) == len(raws):
        return decoded  # type: ignore[no-any-return]
    untagged = iter(decoded)
    return [decode_value(raw) if raw[0] == _TAG else next(untagged) for raw in raws]


HEAD = 24
"""Bytes before a current value: int48 LE expiry ms (0: none), event time ms, version, record."""
NEVER = bytes(6)
"""The expiry of a value that never expires, as it starts a stored field."""
HEAD_WORD = struct.Struct("<Q").unpack_from
"""The first 8 bytes of a stored field (of at least 8) as one integer: its expiry is the low 48
bits (``& EXPIRY_BITS``), read without slicing the field (the hot path of every single read)."""
EXPIRY_BITS = (1 << 48) - 1
TAG = _TAG


def live(raw: bytes | None, now_ms: float) -> Any:
    """The value bytes of a stored field (after its head), None when absent or expired at
    ``now_ms`` (an upper bound of the server's clock), or an :class:`Unreadable` field too short
    to hold a head. Tagged values come back as a memoryview over ``raw`` (no copy: an embedding
    is read by numpy from the reply itself)."""
    if raw is None:
        return None
    if len(raw) <= HEAD:
        return b"\xc1!bad"  # a tag no value has: decodes as unreadable
    expires = int.from_bytes(raw[:6], "little", signed=True)
    if 0 < expires <= now_ms:
        return None
    if raw[HEAD] == _TAG:
        return memoryview(raw)[HEAD:]
    return raw[HEAD:]


_HEAD_FIELDS = struct.Struct("<IhIhIhIh")  # four int48: each a uint32 low part and an int16 high part


def read_head(raw: bytes) -> tuple[int, int, int, int]:
    """expiry ms (0: none), event time ms, version and record sequence of a stored field."""
    a, b, c, d, e, f, g, h = _HEAD_FIELDS.unpack_from(raw)
    return a + (b << 32), c + (d << 32), e + (f << 32), g + (h << 32)


def is_embedding(raw: bytes) -> bool:
    """True when ``raw`` holds an embedding."""
    return raw[:2] == b"\xc1e"


def _scalar(name: str, value: Any) -> Any:
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(name, "finite", f"{value!r} is not stored; use None for missing")
        if type(value) is int and not -_INT64 <= value < _INT64:
            raise ValidationError(name, "range", "integers must fit in int64")
        if type(value) in _SCALARS:
            return value
        # Subclasses (IntEnum, numpy.float64, str enums) are stored as their plain value.
        for base in _SCALARS[1:]:
            if isinstance(value, base):
                return _scalar(name, base(value))
    if isinstance(value, np.generic) and not isinstance(value, (np.datetime64, np.void)):
        if isinstance(value, (np.bool_, np.integer, np.floating, np.str_)):
            return _scalar(name, value.item())
    raise ValidationError(
        name,
        "type",
        f"{type(value).__name__} is not a feature type (use None, bool, int, float, str, a list "
        "of those, a timezone-aware datetime, or a 1-D float numpy array for an embedding)",
    )


def _pack_checked(name: str, value: Any) -> bytes:
    try:
        return _packb(value)
    except OverflowError:
        raise ValidationError(name, "range", "integers must fit in int64") from None
    except UnicodeEncodeError:
        raise ValidationError(name, "encoding", "the string is not valid Unicode") from None


def _encode_embedding(name: str, array: np.ndarray, embedding_dtype: str) -> bytes:
    if array.dtype.kind != "f":
        raise ValidationError(
            name, "dtype", f"embeddings are float arrays, got dtype {array.dtype} "
            "(convert with .astype(numpy.float32) if that is what you mean)"
        )
    if array.ndim != 1 or array.size == 0:
        raise ValidationError(name, "shape", f"embeddings are non-empty 1-D arrays, got shape {array.shape}")
    if array.dtype.itemsize == 2:
        embedding_dtype = "float16"
    tag = _EMBEDDING_TAGS.get(embedding_dtype)
    if tag is None:
        raise ValueError(f"embedding_dtype must be 'float32' or 'float16', not {embedding_dtype!r}")
    with np.errstate(over="ignore"):
        stored = array.astype(_DTYPES[tag], copy=False)
    if not np.isfinite(stored).all():
        bad = "NaN or infinity" if not np.isfinite(array).all() else f"values too large for {embedding_dtype}"
        raise ValidationError(name, "finite", f"the embedding holds {bad}")
    return tag + stored.tobytes()


def timestamp_micros(name: str, value: datetime | np.datetime64) -> int:
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValidationError(name, "finite", "NaT is not stored; use None for missing")
        return int(value.astype("datetime64[us]").astype(np.int64))
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            name, "timezone", "datetimes must be timezone-aware (e.g. datetime.now(timezone.utc))"
        )
    return (value - _EPOCH) // _MICROSECOND
