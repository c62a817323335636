"""The aiohttp application: ``create_app(settings)``.

Every Redis call goes through one :class:`~fsredis.AsyncFeatureStore`, made and closed in a
``cleanup_ctx`` together with the background task that watches Redis. One middleware (:func:`edge`)
does request ids, authentication, JSON errors with stable codes, metrics and the access log.
Routes are in :mod:`fsredis_server.handlers`.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web

from fsredis import (
    AsyncFeatureStore,
    BatchWriteError,
    FeatureStoreError,
    LibraryError,
    NotFound,
    Registry,
    RegistryConflict,
    SchemaError,
    StoreFull,
    StoreUnavailable,
    TransformError,
    ValidationError,
)
from fsredis_server import logs
from fsredis_server.metrics import ServerMetrics
from fsredis_server.settings import ServerSettings
from fsredis_server.wire import BadRequest

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Readiness:
    """What the background check last saw of Redis."""

    ready: bool = False
    reason: str = "not checked yet"
    library_version: str | None = None
    registry_version: int | None = None
    checked_at: float = 0.0


@dataclass
class RegistryCache:
    """The namespace's registry, refreshed by the background check and after a PUT."""

    registry: Registry = field(default_factory=Registry)

    def definitions(self, entity_id: str) -> dict[str, Any]:
        group = entity_id.partition(":")[0] if ":" in entity_id else None
        return self.registry.groups.get(group, {}) if group else {}


SETTINGS = web.AppKey("settings", ServerSettings)
STORE = web.AppKey("store", AsyncFeatureStore)
METRICS = web.AppKey("metrics", ServerMetrics)
READINESS = web.AppKey("readiness", Readiness)
REGISTRY = web.AppKey("registry", RegistryCache)

# Exception class -> (HTTP status, stable code); the codes are the Lua library's where it has one.
ERRORS: list[tuple[type[BaseException], int, str]] = [
    (BadRequest, 400, "FSBADREQUEST"),
    (ValidationError, 400, "FSVALIDATION"),
    (TransformError, 400, "FSTRANSFORM"),
    (BatchWriteError, 400, "FSBATCH"),
    (RegistryConflict, 409, "FSCONFLICT"),
    (SchemaError, 400, "FSSCHEMA"),
    (NotFound, 404, "FSNOTFOUND"),
    (StoreUnavailable, 503, "FSUNAVAILABLE"),
    (StoreFull, 507, "FSFULL"),
    (LibraryError, 503, "FSLIBRARY"),
    (FeatureStoreError, 500, "FSERROR"),
]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
_HTTP_CODES = {401: "FSUNAUTHORIZED", 403: "FSFORBIDDEN", 404: "FSNOTFOUND", 405: "FSMETHOD", 413: "FSTOOLARGE"}
_log = logs.logger()


def json_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """``{"error": {"code", "message", ...extra}}`` with ``status``."""
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything around a handler, in one layer (each layer costs on every request):

    * a request id (the caller's ``X-Request-ID`` when sane, else a new one), bound to every log
      line of the request and echoed in the response;
    * authentication (:func:`check_token`);
    * errors as JSON ``{"error": {"code", "message", ...}}`` with the status they deserve, never a
      stack trace;
    * the request metrics, and one access log line, without feature values.
    """
    started = time.perf_counter()
    given = request.headers.get("X-Request-ID")
    request_id = given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        check_token(request)
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_error(exc.status, _HTTP_CODES.get(exc.status, "FSHTTP"), exc.reason)
        response.headers.update({k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")})
    except Exception as exc:  # every failure answers in the same JSON shape
        response = _error_response(request, exc)
    route = _route(request)
    seconds = time.perf_counter() - started
    metrics = request.app[METRICS]
    metrics.latency.labels(route, request.method).observe(seconds)
    metrics.requests.labels(route, request.method, str(response.status)).inc()
    response.headers["X-Request-ID"] = request_id
    _log.info("request", method=request.method, path=request.path, route=route, status=response.status,
              ms=round(seconds * 1000.0, 3))
    return response


def _error_response(request: web.Request, exc: Exception) -> web.Response:
    for kind, status, code in ERRORS:
        if isinstance(exc, kind):
            return json_error(status, code, str(exc), **_details(request, exc))
    _log.exception("unhandled error", route=_route(request))
    return json_error(500, "FSINTERNAL", "internal error; the request id is in the log")


def _details(request: web.Request, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, (ValidationError, NotFound)):
        details = {"feature": exc.feature, "rule": exc.rule}
        _log.info("refused", code=type(exc).__name__, **details,
                  **({"detail": exc.detail} if request.app[SETTINGS].log_values else {}))
        return details
    if isinstance(exc, TransformError):
        return {"transform": exc.transform}
    if isinstance(exc, BatchWriteError):
        return {"written": exc.written, "refused": {e: str(err) for e, err in exc.errors.items()}}
    return {}


def check_token(request: web.Request) -> None:
    """With a token configured: writes (and reads, with ``protect_reads``) need
    ``Authorization: Bearer <token>``, compared in constant time. 401 without it, 403 when wrong."""
    settings = request.app[SETTINGS]
    if settings.token and request.path not in _OPEN_PATHS:
        reading = request.method in ("GET", "HEAD", "OPTIONS") or _is_read_post(request)
        if settings.protect_reads or not reading:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                raise web.HTTPUnauthorized(reason="this route needs Authorization: Bearer <token>",
                                           headers={"WWW-Authenticate": 'Bearer realm="fsredis"'})
            if not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
                raise web.HTTPForbidden(reason="the token is not valid")


def _is_read_post(request: web.Request) -> bool:
    return request.method == "POST" and request.path == "/v1/features:batch"


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


async def _watch_redis(app: web.Application, stopping: asyncio.Event) -> None:
    """Check Redis every ``check_interval``: readiness, the connection gauge, the library info,
    and the cached registry. Never raises; runs until ``stopping`` is set (a cancellation that
    lands inside redis-py may come out as a connection error, so the flag is what ends it)."""
    store, metrics, state = app[STORE], app[METRICS], app[READINESS]
    interval = app[SETTINGS].check_interval
    while not stopping.is_set():
        try:
            health = await asyncio.wait_for(store.health_check(), timeout=max(interval * 5, 2.0))
        except (asyncio.TimeoutError, FeatureStoreError) as exc:
            health = {"status": "unhealthy", "error": f"check failed: {exc or type(exc).__name__}"}
        ready = health["status"] == "healthy"
        if ready:
            try:
                app[REGISTRY].registry = await store.get_registry()
            except FeatureStoreError as exc:
                ready, health["error"] = False, f"registry unreadable: {exc}"
        if ready != state.ready:
            _log.info("redis ready" if ready else "redis not ready", reason=health.get("error") or health["status"])
        if not ready:
            metrics.connection_failures.inc()
        state.ready = ready
        state.reason = "ok" if ready else str(health.get("error") or f"library {health.get('library_version')} "
                                                 f"loaded, {health.get('library_expected')} expected")
        state.library_version = health.get("library_version")
        state.registry_version = health.get("registry_version")
        state.checked_at = time.time()
        metrics.redis_up.set(1 if ready else 0)
        metrics.library.info({"version": str(state.library_version), "registry_version": str(state.registry_version)})
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass


async def redis_context(app: web.Application) -> AsyncIterator[None]:
    """The store, its metrics, and the Redis watcher, for the life of the app."""
    settings = app[SETTINGS]
    store = AsyncFeatureStore(settings.store)
    store.export_metrics(app[METRICS].registry)
    app[METRICS].track_pool(lambda: store.in_flight, settings.store.max_connections)
    app[STORE] = store
    stopping = asyncio.Event()
    watcher = asyncio.create_task(_watch_redis(app, stopping))
    _log.info("sidecar starting", **settings.public(), library=store.library.version)
    try:
        yield
    finally:
        stopping.set()
        watcher.cancel()
        # Bounded: shutting down must never hang on Redis.
        await asyncio.wait([watcher], timeout=max(settings.store.socket_timeout or 5.0, 1.0) * 2)
        try:
            await asyncio.wait_for(store.close(), timeout=5.0)
        except asyncio.TimeoutError:
            _log.warning("closing the Redis connections timed out")
        _log.info("sidecar stopped")


def create_app(settings: ServerSettings | None = None) -> web.Application:
    """The sidecar application for ``settings`` (default: ``ServerSettings.from_env()``)."""
    from fsredis_server.handlers import add_routes

    settings = settings or ServerSettings.from_env()
    app = web.Application(
        middlewares=[edge], client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = ServerMetrics()
    app[READINESS] = Readiness()
    app[REGISTRY] = RegistryCache()
    app.cleanup_ctx.append(redis_context)
    add_routes(app)
    return app
