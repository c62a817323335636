"""The routes, all in one table (:data:`ROUTES`), and their thin handlers.

Handlers read the request, call the store, and shape the answer; every data rule stays in the
Lua library behind :class:`~fsredis.AsyncFeatureStore`. Every store call is bounded by
``request_timeout`` (:func:`_redis`): past it the answer is 503 FSUNAVAILABLE, however long the
store's own timeouts and retries would take. Path parameters match any segment; the library's
checks decide what an entity id or a feature name may be (400 FSVALIDATION, not a route 404).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Awaitable
from contextlib import aclosing
from typing import Any, TypeVar

import redis
from aiohttp import web

from fsredis import BatchReadError, FeatureStoreError, NotFound, Registry, SchemaError, ValidationError, __version__
from fsredis.errors import translate
from fsredis.keys import EntityIds, entity_pattern
from fsredis_server import stream
from fsredis_server.errors import BadParameter, BadRequest, DeadlineExceeded, EntityNotFound, classify
from fsredis_server.metrics import CONTENT_TYPE
from fsredis_server.openapi import spec
from fsredis_server.state import METRICS, READINESS, REGISTRY, SETTINGS, STORE
from fsredis_server.wire import as_of, event_time, field, flag, read_body, respond, to_features

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # pragma: no cover - aiohttp depends on async-timeout before 3.11
    from async_timeout import timeout

T = TypeVar("T")
ENTITY, FEATURE = "{entity:[^/]+}", "{feature:[^/]+}"


INGEST_ROWS = 500
"""Rows of a streamed ingest written per store call."""
INGEST_EXAMPLES = 10
"""Refused rows an ingest answer quotes."""
MAX_HISTORY = 1000
"""Most registry changes ``GET /v1/registry/history`` answers."""
MAX_LISTED = 1000
"""Most entity ids ``GET /v1/entities`` answers."""
REGISTRY_TIMEOUT = 120.0
"""Seconds ``PUT /v1/registry`` may take: applying a change reads the stored values it concerns."""


async def _redis(request: web.Request, call: Awaitable[T], seconds: float | None = None) -> T:
    """``await call``, a store call, within ``request_timeout`` (or ``seconds``); DeadlineExceeded
    past it."""
    seconds = seconds or request.app[SETTINGS].request_timeout
    try:
        async with timeout(seconds):
            return await call
    except asyncio.TimeoutError:
        raise DeadlineExceeded(f"Redis did not answer within {seconds:g}s") from None


def _names(request: web.Request) -> list[str] | None:
    """``?names=a,b`` (or repeated ``names=``) as a list; None when absent."""
    given = request.query.getall("names", [])
    if not given:
        return None
    names = [n for part in given for n in part.split(",") if n]
    if not names:
        raise BadParameter("names", "names", "names= lists feature names separated by commas")
    return names


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "alive", "version": __version__})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: Redis answered the last check and runs this build's library."""
    state = request.app[READINESS]
    body = {
        "ready": state.ready, "reason": state.reason, "library_version": state.library_version,
        "registry_version": state.registry_version,
        "checked_seconds_ago": round(time.time() - state.checked_at, 3) if state.checked_at else None,
    }
    return web.json_response(body, status=200 if state.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(spec())


async def get_features(request: web.Request) -> web.Response:
    entity = request.match_info["entity"]
    try:
        when = as_of(request.query.get("as_of"))
    except BadRequest as exc:
        raise BadParameter("as_of", "as_of", str(exc)) from None
    if when is None:
        features = await _redis(request, request.app[STORE].get_features(entity, _names(request)))
        if not features:
            raise EntityNotFound(entity)
        return respond(request, {"entity_id": entity, "features": features})
    found = await _redis(request, request.app[STORE].get_features(entity, _names(request), as_of=when))
    if not found and not found.beyond_retention:
        raise EntityNotFound(entity)
    return respond(request, {"entity_id": entity, "features": dict(found),
                             "beyond_retention": sorted(found.beyond_retention)})


async def put_features(request: web.Request) -> web.Response:
    entity = request.match_info["entity"]
    body = await read_body(request)
    features = to_features(field(body, "features", dict), request.app[REGISTRY].definitions(entity))
    result = await _redis(request, request.app[STORE].write_features(
        entity, features,
        ttl=field(body, "ttl", (int, float, dict), None),
        source=field(body, "source", str, None),
        write_id=field(body, "write_id", str, None),
        lineage=field(body, "lineage", dict, None),
        event_time=event_time(field(body, "event_time", (int, float, str), None)),
    ))
    return respond(request, {
        "entity_id": entity, "written": sorted(features), "applied": result.applied, "versions": result.versions,
        "history_only": sorted(result.history_only),
    })


async def delete_features(request: web.Request) -> web.Response:
    entity = request.match_info["entity"]
    deleted = await _redis(request, request.app[STORE].delete_features(entity, _names(request)))
    return respond(request, {"entity_id": entity, "deleted": deleted})


async def batch(request: web.Request) -> web.Response:
    body = await read_body(request)
    ids = field(body, "entity_ids", list)
    limit = request.app[SETTINGS].max_batch
    if not ids or len(ids) > limit:
        raise BadRequest(f"'entity_ids' lists 1 to {limit} entity ids")
    names = field(body, "names", list, None)
    when = event_time(field(body, "as_of", (int, float, str), None), "as_of")
    errors = None
    try:
        entities = await _redis(request, request.app[STORE].get_features_batch(ids, names, as_of=when))
    except BatchReadError as exc:  # every healthy value still answered; the unreadable ones named
        entities = exc.results
        errors = {e: {"code": "FSCORRUPT", "feature": err.feature, "message": str(err)} for e, err in exc.errors.items()}
    out: dict[str, Any] = {"entities": {e: dict(row) for e, row in entities.items()} if when is not None else entities}
    if when is not None:
        out["beyond_retention"] = {e: sorted(row.beyond_retention) for e, row in entities.items() if row.beyond_retention}
    if errors is not None:
        out["errors"] = errors
    return respond(request, out)


async def compute(request: web.Request) -> web.Response:
    entity = request.match_info["entity"]
    body = await read_body(request)
    raw = field(body, "raw_data", dict)
    await _redis(request, request.app[STORE].compute_and_store_features(
        entity, raw, source=field(body, "source", str, "compute"), write_id=field(body, "write_id", str, None),
    ))
    return respond(request, {"entity_id": entity, "computed": True})


async def lineage(request: web.Request) -> web.Response:
    entity, feature = request.match_info["entity"], request.match_info["feature"]
    limit = _count(request, "limit", None, 999_999_999)
    result = await _redis(request, request.app[STORE].get_feature_lineage(entity, feature, limit))
    if result["current_version"] == 0:
        raise NotFound(feature, "version", f"{entity} has no version of {feature}")
    return respond(request, result)


async def rollback(request: web.Request) -> web.Response:
    entity, feature = request.match_info["entity"], request.match_info["feature"]
    body = await read_body(request)
    version = await _redis(request, request.app[STORE].rollback_feature(
        entity, feature, field(body, "version", int), write_id=field(body, "write_id", str, None),
    ))
    return respond(request, {"entity_id": entity, "feature": feature, "version": version})


async def get_registry(request: web.Request) -> web.Response:
    registry = await _redis(request, request.app[STORE].get_registry())
    return respond(request, {"version": registry.version, **registry.to_dict()})


async def registry_history(request: web.Request) -> web.Response:
    """The newest registry changes (``?limit=``, default 20), newest first."""
    limit = _count(request, "limit", 20, MAX_HISTORY)
    changes = await _redis(request, request.app[STORE].registry_history(limit))
    return respond(request, {"history": changes})


async def entities(request: web.Request) -> web.Response:
    """Entity ids found by ``SCAN`` (every primary of a cluster): ``?type=`` one entity type,
    ``?match=`` a glob on the id, at most ``?limit=`` (default 100, at most 1,000) ids, sorted.
    The scan stops at the limit, or at the request's deadline with what it found by then (503 if
    nothing); ``complete`` says whether it saw every key."""
    limit = _count(request, "limit", 100, MAX_LISTED)
    entity_type, match = request.query.get("type") or None, request.query.get("match") or "*"
    store = request.app[STORE]
    namespace = store.config.namespace
    try:
        pattern = entity_pattern(namespace, entity_type, match)
    except ValueError as exc:
        raise BadParameter("type", "entity_type", str(exc)) from None
    found = EntityIds(namespace, limit)

    async def scan() -> None:
        async with aclosing(store.redis.scan_iter(match=pattern, count=1000)) as keys:
            async for key in keys:
                if found.add(key):
                    return

    try:
        await _redis(request, scan())
    except DeadlineExceeded:
        if not found.found:
            raise
        found.complete = False
    except redis.RedisError as error:
        raise translate(error) from error
    return respond(request, {"entities": found.ids(), "complete": found.complete})


def _count(request: web.Request, name: str, default: Any, most: int) -> Any:
    """A whole-number query parameter from 1 to ``most``; BadParameter otherwise."""
    given = request.query.get(name)
    if given is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", given) or not 1 <= int(given) <= most:
        raise BadParameter(name, "integer", f"{name}={given!r}: a whole number from 1 to {most}")
    return int(given)


async def put_registry(request: web.Request) -> web.Response:
    """Apply a registry (the features.yaml structure, as JSON). ``?dry_run=true`` only diffs."""
    dry_run = flag(request, "dry_run")
    body = await read_body(request)
    try:
        desired = Registry.from_dict(field(body, "registry", dict))
    except (TypeError, ValueError) as exc:
        raise SchemaError(str(exc)) from None
    store, cache = request.app[STORE], request.app[REGISTRY]
    if dry_run:
        changes = await _redis(request, store.diff_registry(desired))
    else:
        force, author = field(body, "force", bool, False), field(body, "author", str, None) or "sidecar"

        async def apply() -> Any:
            applied = await store.apply_registry(desired, force=force, author=author)
            cache.registry = await store.get_registry()
            return applied

        # Shielded: past the deadline the answer is 503, but a change being stored and loaded
        # into the library is carried through, never cut between the two.
        changes = await _redis(request, asyncio.shield(asyncio.ensure_future(apply())), REGISTRY_TIMEOUT)
    return respond(request, {"changes": [c.to_dict() for c in changes], "version": cache.registry.version})


async def ingest(request: web.Request) -> web.Response:
    """A stream of rows (fsredis_server/stream.py), written INGEST_ROWS at a time as they arrive."""
    store, source = request.app[STORE], request.query.get("source")
    counts = {"rows": 0, "written": 0, "already_applied": 0, "history_only": 0, "rejected": 0}
    errors: list[dict[str, Any]] = []
    pending: list[tuple[int, dict[str, Any]]] = []

    def refuse(number: int, entity: Any, exc: BaseException) -> None:
        counts["rejected"] += 1
        if len(errors) < INGEST_EXAMPLES:
            code = (classify(exc) or (400, "FSBADREQUEST"))[1]
            errors.append({"row": number, "entity_id": entity, "code": code, "message": str(exc)})

    async def flush() -> None:
        results = await _redis(request, store.write_rows([row for _, row in pending], source=source))
        for (number, row), result in zip(pending, results):
            if isinstance(result, FeatureStoreError):
                refuse(number, row["entity_id"], result)
            elif result.applied:
                counts["written"] += 1
                counts["history_only"] += len(result.history_only)
            else:
                counts["already_applied"] += 1
        pending.clear()

    async for obj in stream.objects(request):
        number = counts["rows"]
        counts["rows"] += 1
        try:
            pending.append((number, stream.to_row(obj, request)))
        except (BadRequest, ValidationError) as exc:
            refuse(number, obj.get("entity_id") if isinstance(obj, dict) else None, exc)
        if len(pending) >= INGEST_ROWS:
            await flush()
    if pending:
        await flush()
    return respond(request, {**counts, "errors": errors})


ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/healthz", healthz),
    ("GET", "/readyz", readyz),
    ("GET", "/metrics", metrics),
    ("GET", "/openapi.json", openapi),
    ("GET", f"/v1/features/{ENTITY}", get_features),
    ("PUT", f"/v1/features/{ENTITY}", put_features),
    ("DELETE", f"/v1/features/{ENTITY}", delete_features),
    ("POST", "/v1/features:batch", batch),
    ("POST", "/v1/ingest", ingest),
    ("POST", f"/v1/compute/{ENTITY}", compute),
    ("GET", f"/v1/lineage/{ENTITY}/{FEATURE}", lineage),
    ("POST", f"/v1/rollback/{ENTITY}/{FEATURE}", rollback),
    ("GET", "/v1/registry", get_registry),
    ("PUT", "/v1/registry", put_registry),
    ("GET", "/v1/registry/history", registry_history),
    ("GET", "/v1/entities", entities),
]
"""(method, path, handler); a path parameter is ``{name:[^/]+}`` (the OpenAPI path drops the pattern)."""


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
