"""Feature values on the HTTP wire: JSON by default, msgpack when asked for.

* JSON: embeddings are arrays of numbers, timestamps ISO 8601 strings (UTC). Coming in, an array
  (or a string) becomes an embedding (or a timestamp) when the registry defines the feature so;
  otherwise it stays a list (a string).
* msgpack (``application/msgpack``): embeddings are raw little-endian bytes (float32, or float16
  where the registry says so), timestamps msgpack timestamps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgpack
import numpy as np
import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from fsredis import FeatureDefinition, ValidationError
from fsredis_server.errors import BadParameter, BadRequest, BodyTooLarge

JSON = "application/json"
MSGPACK = "application/msgpack"
_MSGPACK_TYPES = (MSGPACK, "application/x-msgpack", "application/vnd.msgpack")
INT64 = range(-(2**63), 2**63)
_LONG_NUMBER = re.compile(rb"\d{19}")
"""Every integer outside int64 has at least 19 digits; a body without such a run has none."""
_UINT64 = b"\xcf"
"""The msgpack marker of an unsigned 64-bit integer, the only kind that can leave int64."""
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def wants_msgpack(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any(kind in accept for kind in _MSGPACK_TYPES)


def respond(request: web.Request, payload: Any, status: int = 200) -> web.Response:
    """``payload`` as msgpack when the client accepts it, else JSON."""
    if wants_msgpack(request):
        body = msgpack.packb(payload, default=_to_msgpack, datetime=True, use_bin_type=True)
        return web.Response(body=body, status=status, content_type=MSGPACK)
    body = orjson.dumps(payload, default=_to_json, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_UTC_Z)
    return web.Response(body=body, status=status, content_type=JSON)


async def read_body(request: web.Request) -> Any:
    """The request body, msgpack or JSON by its Content-Type; BadRequest when unreadable.

    aiohttp inflates a gzip or deflate body as it arrives, a bounded chunk at a time, and
    ``request.read()`` stops with 413 as soon as the inflated size passes ``max_body_bytes``:
    a compression bomb is refused without being inflated. Integers outside int64 are refused
    (orjson would quietly make floats of them): FSVALIDATION naming the feature under
    ``features``, FSBADREQUEST naming the field elsewhere.
    """
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(f"the body is larger than max_body_bytes={request.client_max_size} "
                           "(counted after decompression)") from None
    except RequestPayloadError as exc:
        raise BadRequest(f"the body could not be read: {str(exc).splitlines()[-1].strip()}") from None
    if not raw:
        raise BadRequest("the request needs a body")
    is_msgpack = request.content_type in _MSGPACK_TYPES
    try:
        if is_msgpack:
            body = msgpack.unpackb(raw, raw=False, timestamp=3, strict_map_key=True)
            suspect = _UINT64 in raw
        elif _LONG_NUMBER.search(raw):  # rare: parse exactly, big integers as ints
            body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
            suspect = True
        else:
            body, suspect = orjson.loads(raw), False
    except (ValueError, RecursionError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise BadRequest(f"the body is not valid {'msgpack' if is_msgpack else 'JSON'}: {exc}") from None
    if suspect:
        _check_int64(body)
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_int64(body: Any) -> None:
    """Refuse the first integer outside int64 anywhere in ``body`` (iteratively: bodies nest)."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), body)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((path + (k,), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((path + (i,), v) for i, v in enumerate(node))
        elif type(node) is int and node not in INT64:
            if len(path) >= 2 and path[0] == "features":
                raise ValidationError(str(path[1]), "range", f"{node} does not fit in a signed 64-bit integer")
            where = "".join(f"[{p!r}]" for p in path) or "the body"
            raise BadRequest(f"{where} holds {node}, which does not fit in a signed 64-bit integer")


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """Query parameter ``name`` as a boolean: ``true``/``false``/``1``/``0`` (any case), else
    400 FSVALIDATION naming it; ``default`` when absent."""
    given = request.query.get(name)
    if given is None:
        return default
    value = _FLAGS.get(given.lower())
    if value is None:
        raise BadParameter(name, "boolean", f"{name}={given!r}: use true, false, 1 or 0")
    return value


def field(body: Any, name: str, kind: type | tuple[type, ...], default: Any = ..., what: str = "") -> Any:
    """``body[name]``, checked to be a ``kind``; BadRequest naming the field otherwise."""
    if not isinstance(body, Mapping):
        raise BadRequest("the body is a JSON object")
    if name not in body:
        if default is ...:
            raise BadRequest(f"the body needs {name!r}{what}")
        return default
    value = body[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, (int, float)):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise BadRequest(f"{name!r} must be {names}{what}")
    return value


def event_time(value: Any, what: str = "event_time") -> Any:
    """A time from a body or a query: seconds since the epoch, or an ISO 8601 / RFC 3339 time with
    its offset (``2026-12-01T10:00:00Z``); None stays None (for an event time: the server's)."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(f"'{what}' {value[:64]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise BadRequest(f"'{what}' needs its offset from UTC (e.g. 2026-12-01T10:00:00Z)")
    return moment


def as_of(text: str | None) -> Any:
    """The ``as_of`` of a read: seconds since the epoch or an ISO 8601 time with its offset (as
    :func:`event_time`); None when absent."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return event_time(text, "as_of")


def to_features(values: Any, definitions: Mapping[str, FeatureDefinition]) -> dict[str, Any]:
    """Feature values as they came over the wire, made into what the store takes: embeddings and
    timestamps by the registered definitions (bytes are embeddings in any case)."""
    if not isinstance(values, Mapping) or not values:
        raise BadRequest("'features' is a non-empty object of name -> value")
    out: dict[str, Any] = {}
    for name, value in values.items():
        definition = definitions.get(name)
        dtype = definition.dtype if definition else None
        if isinstance(value, bytes):
            precision = definition.precision if dtype == "embedding" else "float32"  # type: ignore[union-attr]
            size = 2 if precision == "float16" else 4
            if len(value) % size:
                raise ValidationError(name, "shape", f"{len(value)} bytes are not a whole number of {precision} values")
            value = np.frombuffer(value, dtype=f"<f{size}")
        elif dtype == "embedding" and isinstance(value, list):
            try:
                value = np.asarray(value, dtype=definition.precision)  # type: ignore[union-attr]
            except (TypeError, ValueError):
                raise ValidationError(name, "dtype", "an embedding is an array of numbers") from None
        elif dtype == "timestamp" and isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValidationError(name, "dtype", f"{value!r} is not an ISO 8601 timestamp") from None
        out[name] = value
    return out


def _to_json(value: Any) -> Any:
    """What orjson does not write itself: float16 arrays, numpy scalars."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _to_msgpack(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be sent as msgpack")
