"""``fsredis serve``: settings from the command line and the environment, an embedded Valkey when
no Redis URL is given, then :func:`fsredis_server.serve`.

A configuration mistake (a URL without a scheme, a short token, ``FSREDIS_SERVER_PORT=abc``, a
negative limit, an unreadable token file) is one line on stderr and exit status 2, never a
traceback. ``fsredis.cli`` calls :func:`serve_command` (a lazy import: the library does not need
the server extra).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from fsredis import FeatureStoreConfig
from fsredis.embedded import EmbeddedServer
from fsredis_server import logs, serve
from fsredis_server.settings import ServerSettings

CONFIG_ERROR = 2


def settings_from(args: argparse.Namespace) -> ServerSettings:
    """The sidecar's settings: ``FSREDIS_SERVER_*`` / ``FSREDIS_*``, overridden by the arguments.
    Raises ValueError (ConfigError) or OSError (the token file) for a mistake."""
    store_overrides: dict[str, Any] = {}
    if args.namespace:
        store_overrides["namespace"] = args.namespace
    if args.redis_url:
        store_overrides["redis_url"] = args.redis_url
    overrides: dict[str, Any] = {"store": FeatureStoreConfig.from_env(**store_overrides)}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if getattr(args, "workers", None) is not None:
        overrides["workers"] = args.workers
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            overrides["token"] = f.read().strip()
    return ServerSettings.from_env(**overrides)


def serve_command(args: argparse.Namespace) -> int:
    """Run the sidecar until SIGTERM/SIGINT; 2 after printing a configuration mistake."""
    try:
        settings = settings_from(args)
    except (ValueError, OSError) as exc:
        print(f"fsredis serve: configuration error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    logs.configure()
    server = None
    if not settings.store.redis_url:
        server = EmbeddedServer(data_dir=args.data_dir).start()
        logs.logger().info("started an embedded Valkey; it stops with the sidecar", url=server.url,
                           data_dir=str(server.data_dir), version=server.version())
        settings.store = dataclasses.replace(settings.store, redis_url=server.url)
    workers = settings.workers or os.cpu_count() or 1
    try:
        if workers == 1:
            serve(settings)
            return 0
        from fsredis_server import workers as supervisor

        return supervisor.run(settings, workers)
    finally:
        if server is not None:
            server.stop()
