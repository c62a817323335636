"""The aiohttp application: ``create_app(settings)``.

Every Redis call goes through one :class:`~fsredis.AsyncFeatureStore`, made and closed in a
``cleanup_ctx`` together with the background task that watches Redis
(:mod:`fsredis_server.background`). One middleware (:func:`~fsredis_server.middlewares.edge`)
does request ids, authentication, JSON errors with stable codes (:mod:`fsredis_server.errors`),
metrics and the access log. Routes are in :mod:`fsredis_server.handlers`; the app's state keys in
:mod:`fsredis_server.state`.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from fsredis_server import logs
from fsredis_server.background import redis_context
from fsredis_server.console import add_console
from fsredis_server.drain import drain_context
from fsredis_server.handlers import add_routes
from fsredis_server.metrics import ServerMetrics
from fsredis_server.middlewares import edge
from fsredis_server.settings import ServerSettings
from fsredis_server.state import METRICS, READINESS, REGISTRY, SETTINGS, Readiness, RegistryCache

__all__ = ["create_app"]


def create_app(settings: ServerSettings | None = None) -> web.Application:
    """The sidecar application for ``settings`` (default: ``ServerSettings.from_env()``).

    Its logs are JSON lines (:mod:`fsredis_server.logs`) unless the process configured structlog
    itself; ``fsredis serve`` also routes the standard ``logging`` records (aiohttp's) there."""
    if not structlog.is_configured():
        logs.configure_structlog()
    settings = settings or ServerSettings.from_env()
    app = web.Application(middlewares=[edge], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = ServerMetrics()
    app[READINESS] = Readiness()
    app[REGISTRY] = RegistryCache()
    app.cleanup_ctx.append(redis_context)
    app.cleanup_ctx.append(drain_context)
    add_routes(app)
    if settings.console:
        add_console(app)
    return app
