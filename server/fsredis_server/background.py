"""The store's life in the app (a ``cleanup_ctx``), and the background check of Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from fsredis import AsyncFeatureStore, FeatureStoreError
from fsredis_server import logs
from fsredis_server.state import METRICS, READINESS, REGISTRY, SETTINGS, STORE

_log = logs.logger()

RECONCILE_INTERVAL = 5.0
"""Seconds at least between two installs of the library on lagging nodes by the sidecar."""


async def check_redis(app: web.Application) -> None:
    """One check of Redis, bounded by ``request_timeout`` and by half of ``check_interval`` (so
    a frozen Redis shows on ``/readyz`` within 1.5 check intervals): readiness, the connection
    gauge, the library info, and the cached registry. Never raises (but for cancellation)."""
    metrics, state, settings = app[METRICS], app[READINESS], app[SETTINGS]
    bound = min(settings.request_timeout, settings.check_interval / 2)
    try:
        health = await asyncio.wait_for(_health_and_registry(app), timeout=bound)
    except (asyncio.TimeoutError, FeatureStoreError) as exc:
        reason = f"no answer within {bound:g}s" if isinstance(exc, asyncio.TimeoutError) else str(exc)
        health = {"status": "unhealthy", "redis_connected": False, "error": f"check failed: {reason}"}
    # A broken stored definition refuses the writes of its feature only: still ready, and said.
    ready = "error" not in health and (health["status"] == "healthy" or (
        health["status"] == "degraded" and health.get("library_version") == health.get("library_expected")))
    if ready:
        broken = health.get("registry_errors")
        reason = f"ok; unreadable registry definitions (their writes are refused): {sorted(broken)}" if broken else "ok"
    else:
        reason = str(health.get("error") or f"library {health.get('library_version')} "
                                             f"loaded, {health.get('library_expected')} expected")
    for secret in settings.secrets():  # /readyz is open: never show a password there
        reason = reason.replace(secret, "***")
    if ready != state.ready and state.checked_at:
        _log.info("redis ready" if ready else "redis not ready", reason=reason)
    if not ready:
        metrics.connection_failures.inc()
    state.ready, state.reason, state.connected = ready, reason, bool(health.get("redis_connected"))
    state.library_version = health.get("library_version")
    state.registry_version = health.get("registry_version")
    state.checked_at = time.time()
    metrics.redis_up.set(1 if ready else 0)
    metrics.library(str(state.library_version), str(state.registry_version))
    metrics.refresh_pool()


async def _health_and_registry(app: web.Application) -> dict[str, Any]:
    store = app[STORE]
    health: dict[str, Any] = await store.health_check()
    # A node that missed a registry change (e.g. a primary the registry's writer did not know)
    # enforces old rules: install the library there, with the current registry. At most every
    # RECONCILE_INTERVAL s, so that a lag that does not go away never keeps the servers compiling.
    # Nodes without the library get it from the check itself (its first call installs it); one
    # that runs another build's library is only reported: during a rolling upgrade, sidecars of
    # two builds must not take turns replacing each other's.
    behind = {node: why for node, why in (health.get("lagging_nodes") or {}).items() if why.startswith("registry")}
    state = app[READINESS]
    if behind and time.monotonic() - state.reconciled_at >= RECONCILE_INTERVAL:
        state.reconciled_at = time.monotonic()
        try:
            await store.load_library()
        except FeatureStoreError as exc:  # e.g. a user that may not install it: say so, stay as checked
            _log.warning("could not install the library on nodes behind the registry", nodes=behind, error=str(exc))
            return health
        _log.warning("library installed on nodes behind the registry", nodes=behind)
        health = await store.health_check()
    if health["status"] == "healthy":
        try:
            app[REGISTRY].registry = await store.get_registry()
        except FeatureStoreError as exc:
            health["error"] = f"registry unreadable: {exc}"
    return health


async def _watch_redis(app: web.Application, stopping: asyncio.Event) -> None:
    """:func:`check_redis` every ``check_interval`` until ``stopping`` is set (a cancellation
    that lands inside redis-py may come out as a connection error, so the flag is what ends it).
    A frozen Redis shows on ``/readyz`` within 1.5 ``check_interval``."""
    interval = app[SETTINGS].check_interval
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
        if not stopping.is_set():
            await check_redis(app)


async def redis_context(app: web.Application) -> AsyncIterator[None]:
    """The store, its metrics, and the Redis watcher, for the life of the app. The first check
    runs before the app serves, and the startup line says how it went."""
    settings = app[SETTINGS]
    store = AsyncFeatureStore(settings.store)
    store.export_metrics(app[METRICS].registry)
    app[METRICS].track_pool(lambda: store.in_flight, settings.store.max_connections)
    app[STORE] = store
    await check_redis(app)
    state = app[READINESS]
    _log.info("sidecar starting", listen=f"http://{settings.host}:{settings.port}", **settings.public(),
              library=store.library.version, redis_answered=state.connected, ready=state.ready,
              **({} if state.ready else {"reason": state.reason}))
    stopping = asyncio.Event()
    watcher = asyncio.create_task(_watch_redis(app, stopping))
    try:
        yield
    finally:
        stopping.set()
        watcher.cancel()
        # Bounded: shutting down must never hang on Redis.
        await asyncio.wait([watcher], timeout=settings.request_timeout * 2)
        try:
            await asyncio.wait_for(store.close(), timeout=5.0)
        except asyncio.TimeoutError:
            _log.warning("closing the Redis connections timed out")
        _log.info("sidecar stopped")
