"""The fsredis sidecar: health, Prometheus metrics and HTTP access to a feature store.

``fsredis serve`` runs it; ``create_app(settings)`` builds the aiohttp application (tests and
custom runners use that). Every Redis call goes through :class:`fsredis.AsyncFeatureStore`.
"""

from fsredis_server.app import create_app
from fsredis_server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app", "serve"]


def serve(settings: ServerSettings, *, reuse_port: bool = False) -> None:
    """Run the sidecar until SIGTERM or SIGINT; in-flight requests get ``shutdown_timeout``.
    ``reuse_port``: bind with SO_REUSEPORT, beside other workers on the same port."""
    from aiohttp import web

    from fsredis_server import logs

    logs.configure()  # JSON lines, aiohttp's own records included
    web.run_app(
        create_app(settings), host=settings.host, port=settings.port, shutdown_timeout=settings.shutdown_timeout,
        access_log=None, print=None, handle_signals=True, reuse_port=reuse_port or None,
    )
