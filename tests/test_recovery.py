"""Servers that restart, lose their library, go away, or answer late."""

from __future__ import annotations

import threading
import time

import pytest

from fsredis import FeatureStoreConfig, StoreUnavailable
from tests.conftest import SERVERS, start_server


@pytest.fixture(params=SERVERS)
def own_server(request, tmp_path):
    """A server of each kind that this test alone uses (and may restart)."""
    server = start_server(request.param, data_dir=tmp_path / "data")
    yield server
    server.stop()


def test_restart_without_persistence_reloads_the_library(own_server, transport, client_kind, open_store) -> None:
    store = open_store(FeatureStoreConfig(redis_url=own_server.url, transport=transport), client_kind)
    store.write_features("e1", {"a": 1})
    own_server.restart()
    with own_server.client() as client:
        assert client.function_list() == []  # the server really lost its functions
    assert store.get_features("e1", ["a"]) == {}  # ... and its data
    store.write_features("e1", {"a": 2})
    assert store.get_features("e1", ["a"]) == {"a": 2}
    assert store.health_check()["status"] == "healthy"


def test_restart_with_aof_keeps_data_and_functions(tmp_path, open_store) -> None:
    server = start_server("valkey", data_dir=tmp_path / "aof", persistence=True)
    try:
        store = open_store(FeatureStoreConfig(redis_url=server.url))
        store.write_features("e1", {"a": 1, "b": "kept"})
        store.write_features("e1", {"a": 2})
        server.restart()
        with server.client() as client:
            assert client.fcall_ro("fs_version", 0) == store.library.version.encode()
        assert store.get_features("e1") == {"a": 2, "b": "kept"}
        assert [v["value"] for v in store.get_feature_lineage("e1", "a")["versions"]] == [2, 1]
    finally:
        server.stop()


def test_a_server_that_goes_away_and_returns(own_server, client_kind, open_store) -> None:
    store = open_store(
        FeatureStoreConfig(redis_url=own_server.url, retries=1, socket_timeout=1, socket_connect_timeout=0.5),
        client_kind,
    )
    store.write_features("e1", {"a": 1})
    own_server._terminate()
    with pytest.raises(StoreUnavailable):
        store.get_features("e1", ["a"])
    health = store.health_check()
    assert health["status"] == "unhealthy" and health["redis_connected"] is False and "error" in health
    own_server.start()
    store.write_features("e1", {"a": 3})
    assert store.get_features("e1", ["a"]) == {"a": 3}
    assert store.health_check()["status"] == "healthy"


SPIN = "local x = 0 for i = 1, tonumber(ARGV[1]) do x = x + i end return 1"


def _spin_rate(server) -> float:
    """Loop iterations per second of SPIN on this server (TIME is frozen inside a script, so a
    script cannot wait on the clock: it counts instead)."""
    with server.client() as client:
        started = time.perf_counter()
        client.eval(SPIN, 0, 5_000_000)
        return 5_000_000 / (time.perf_counter() - started)


def _busy(server, iterations: int) -> None:
    # Keeps the server inside one script, so commands sent meanwhile wait unanswered.
    with server.client() as client:
        client.eval(SPIN, 0, iterations)


def test_a_write_resent_after_a_timeout_makes_one_version(own_server, open_store) -> None:
    # Writes go by FCALL with either transport (fs_write exists only as a function).
    store = open_store(FeatureStoreConfig(redis_url=own_server.url, socket_timeout=0.1, retries=20))
    store.write_features("e1", {"x": 0})
    with own_server.client() as client:
        client.config_resetstat()
    busy = threading.Thread(target=_busy, args=(own_server, int(_spin_rate(own_server) * 0.6)))
    busy.start()
    time.sleep(0.1)
    try:
        assert store.write_features("e1", {"x": 1})  # times out, is sent again, succeeds
    finally:
        busy.join()
    with own_server.client() as client:
        stats = client.info("commandstats")
    assert stats["cmdstat_fcall"]["calls"] >= 2, stats  # the write really ran more than once ...
    lineage = store.get_feature_lineage("e1", "x")
    assert lineage["current_version"] == 2  # ... and made exactly one version
    assert [v["value"] for v in lineage["versions"]] == [1, 0]


def test_async_callers_wait_for_a_free_connection(own_server) -> None:
    import asyncio

    from fsredis import AsyncFeatureStore

    async def scenario() -> None:
        # read_timeout well past the ~0.8 s busy script: this test is about waiting for a slot.
        config = FeatureStoreConfig(redis_url=own_server.url, max_connections=2, pool_timeout=0.2, read_timeout=5)
        async with AsyncFeatureStore(config) as store:
            await store.write_features("e1", {"a": 1})
            assert await asyncio.gather(*(store.get_features("e1", ["a"]) for _ in range(50))) == [{"a": 1}] * 50
            busy = threading.Thread(target=_busy, args=(own_server, int(_spin_rate(own_server) * 0.8)))
            busy.start()
            await asyncio.sleep(0.1)
            try:
                waiting = [asyncio.ensure_future(store.get_features("e1", ["a"])) for _ in range(3)]
                results = await asyncio.gather(*waiting, return_exceptions=True)
            finally:
                busy.join()
            assert sum(isinstance(r, StoreUnavailable) for r in results) == 1  # the third found no slot
            assert [r for r in results if not isinstance(r, Exception)] == [{"a": 1}, {"a": 1}]
            pool = store.redis.connection_pool  # never more connections than max_connections
            assert len(pool._available_connections) + len(pool._in_use_connections) <= 2

    asyncio.run(scenario())
