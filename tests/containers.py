"""Servers from container images, for the behaviour matrix on other Redis and Valkey versions.

Opt in with ``FSREDIS_TESTCONTAINERS=1`` (and a reachable Docker engine): the ``server`` fixture
then also runs every behaviour test on ``redis:7.4``, ``redis:8`` and ``valkey/valkey:8`` started
through ``testcontainers``. Without an engine those tests skip and say why; without the variable
they are not collected at all (these machines have no engine).
"""

from __future__ import annotations

import functools
import gc
import os
import time
import warnings
from typing import Any

import redis

IMAGES = ("redis:7.4", "redis:8", "valkey/valkey:8")
ENABLED = os.environ.get("FSREDIS_TESTCONTAINERS") == "1"


@functools.cache
def engine_problem() -> str | None:
    """Why no container can start here, or None when a Docker engine answers (asked once)."""
    try:
        import docker
    except ImportError:
        return "the testcontainers package is not installed (pip install -e '.[dev]')"
    with warnings.catch_warnings():  # (a failed connection leaves its socket to the collector)
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=5)
            client.ping()
            client.close()
        except Exception as exc:  # noqa: BLE001 - any failure to reach the engine means: skip, saying why
            return f"no Docker engine is reachable ({type(exc).__name__}: {exc})"
        finally:
            gc.collect()
    return None


class ContainerServer:
    """A Redis or Valkey server in a container, with the parts of EmbeddedServer tests use."""

    def __init__(self, image: str) -> None:
        from testcontainers.core.container import DockerContainer

        self.image = image
        self.binary = image
        self._container = DockerContainer(image).with_exposed_ports(6379)
        self.host = "127.0.0.1"
        self.port: int | None = None

    def start(self) -> ContainerServer:
        self._container.start()
        self.host = self._container.get_container_host_ip()
        self.port = int(self._container.get_exposed_port(6379))
        deadline = time.monotonic() + 60
        while True:
            try:
                with self.client() as probe:
                    if probe.ping():
                        return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port)

    def stop(self) -> None:
        self._container.stop()

    def version(self) -> str:
        return self.image

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"{name}: a container server ({self.image}) has no {name}; this test needs an embedded one")
