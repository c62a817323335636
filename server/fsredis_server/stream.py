"""The rows of a streamed body (``POST /v1/ingest``), read as they arrive.

The body is NDJSON (one JSON object a line) or, with ``Content-Type: application/msgpack``, msgpack
objects back to back. Each row is ``{"entity_id", "features", "event_time"?, "write_id"?}``. The
body is never held whole: one row may be at most ``max_body_bytes``, the stream as long as it
likes. A row that does not parse comes as the BadRequest that says why, so the caller can count
it and go on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgpack
import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from fsredis_server.errors import BadRequest, BodyTooLarge
from fsredis_server.state import REGISTRY, SETTINGS
from fsredis_server.wire import _MSGPACK_TYPES, event_time, to_features

CHUNK = 1 << 16


async def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The body as it arrives (inflated by aiohttp when gzip or deflate); BadRequest when it
    cannot be read or inflated."""
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            yield chunk
    except RequestPayloadError as exc:
        raise BadRequest(f"the body could not be read: {str(exc).splitlines()[-1].strip()}") from None


async def objects(request: web.Request) -> AsyncIterator[Any]:
    """The body's objects as they arrive (a BadRequest in place of one that does not parse)."""
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_type in _MSGPACK_TYPES:
        unpacker = msgpack.Unpacker(raw=False, timestamp=3, strict_map_key=True, max_buffer_size=limit)
        async for chunk in _chunks(request):
            try:
                unpacker.feed(chunk)
            except msgpack.BufferFull:
                raise BodyTooLarge(f"one row is larger than max_body_bytes={limit}") from None
            try:
                for obj in unpacker:
                    yield obj
            except (ValueError, msgpack.FormatError, msgpack.StackError) as exc:
                raise BadRequest(f"the stream is not valid msgpack: {exc}") from None
        return
    pending = b""
    async for chunk in _chunks(request):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > limit:
            raise BodyTooLarge(f"one line is larger than max_body_bytes={limit}")
        for line in lines:
            if line.strip():
                yield _line(line)
    if pending.strip():
        yield _line(pending)


def _line(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return BadRequest(f"the line is not JSON: {exc}")


def to_row(obj: Any, request: web.Request) -> dict[str, Any]:
    """A streamed object as a row for ``write_rows``; BadRequest or ValidationError when it is none."""
    if isinstance(obj, Exception):
        raise obj
    if not isinstance(obj, dict) or not isinstance(obj.get("entity_id"), str) or not isinstance(obj.get("features"), dict):
        raise BadRequest("a row is an object with a string 'entity_id' and an object 'features'")
    entity = obj["entity_id"]
    row = {"entity_id": entity, "features": to_features(obj["features"], request.app[REGISTRY].definitions(entity))}
    if obj.get("event_time") is not None:
        if not isinstance(obj["event_time"], (int, float, str)) or isinstance(obj["event_time"], bool):
            raise BadRequest("'event_time' is seconds since the epoch or an ISO 8601 time")
        row["event_time"] = event_time(obj["event_time"])
    if obj.get("write_id") is not None:
        if not isinstance(obj["write_id"], str):
            raise BadRequest("'write_id' is a string")
        row["write_id"] = obj["write_id"]
    return row
