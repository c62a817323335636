"""Sentinel: a primary, its replica and three sentinels on loopback (the Valkey binary in sentinel
mode). Clients find the primary through the sentinels, and find the new one by themselves after
kill -9 of the old; the library is on the promoted node (functions replicate)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsredis import AsyncFeatureStore, BatchWriteError, FeatureStore, FeatureStoreConfig, StoreUnavailable
from fsredis.embedded import EmbeddedServer, default_binary, free_port
from tests.test_cluster_moving import ENTITIES, Load

pytestmark = [pytest.mark.timeout(180), pytest.mark.moving]

MASTER = "fsmain"


class Sentinels:
    """A primary, a replica, and three sentinels watching them (a failover after 1 s of silence)."""

    def __init__(self, tmp: Path) -> None:
        self.primary = EmbeddedServer(persistence=False).start()
        self.replica = EmbeddedServer(persistence=False, extra_args=("--replicaof", "127.0.0.1", str(self.primary.port))).start()
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            with self.primary.client() as client:  # (so the sentinels' first look finds the replica)
                limit = time.monotonic() + 20
                while client.info("replication")["connected_slaves"] < 1 or client.wait(1, 100) < 1:
                    assert time.monotonic() < limit, "the replica did not connect"
                    time.sleep(0.05)
            for i in range(3):
                port = free_port()
                conf = tmp / f"sentinel{i}.conf"
                conf.write_text(
                    f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2\n"
                    f"sentinel down-after-milliseconds {MASTER} 1000\n"
                    f"sentinel failover-timeout {MASTER} 5000\n"
                    f"sentinel parallel-syncs {MASTER} 1\n"
                )
                self.processes.append(subprocess.Popen([default_binary(), str(conf), "--sentinel"],
                                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                self.ports.append(port)
            limit = time.monotonic() + 30
            while self.replicas_known() < 1:  # every sentinel sees the primary and its replica
                assert time.monotonic() < limit, "the sentinels did not come up"
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def client(self, i: int = 0):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.ports[i], socket_timeout=2)

    def replicas_known(self) -> int:
        found = []
        for i in range(3):
            with self.client(i) as client:
                try:
                    found.append(int(client.execute_command("SENTINEL", "MASTER", MASTER)[b"num-slaves"]))
                except Exception:  # noqa: BLE001 - not up yet
                    return 0
        return min(found)

    def primary_port(self) -> int:
        with self.client() as client:
            return int(client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)[1])

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + f"/{MASTER}"

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(10)
        self.replica.stop()
        self.primary.stop()


@pytest.fixture
def sentinels(tmp_path) -> Iterator[Sentinels]:
    made = Sentinels(tmp_path)
    yield made
    made.stop()


def test_clients_find_the_primary_through_the_sentinels(sentinels) -> None:
    config = FeatureStoreConfig(redis_url=sentinels.url, namespace="sent", min_replicas=1)
    with FeatureStore(config) as store:
        assert store.write_features("e1", {"x": 1.5}).versions == {"x": 1}
        assert store.get_features("e1", ["x"]) == {"x": 1.5}
        assert store.health_check()["status"] == "healthy"

    async def asynchronous() -> None:
        async with AsyncFeatureStore(config) as store:
            assert (await store.get_features_batch(["e1", "e2"], ["x"])) == {"e1": {"x": 1.5}, "e2": {}}

    import asyncio

    asyncio.run(asynchronous())


def test_clients_follow_a_failover_by_themselves(sentinels) -> None:
    config = FeatureStoreConfig(redis_url=sentinels.url, namespace="sent", max_versions=3, enable_monitoring=False,
                                read_timeout=1.0, write_timeout=3.0)
    with FeatureStore(config) as store:
        store.write_features_batch({e: {"x": 0.0} for e in ENTITIES})
        library = store.library.version
    old = sentinels.primary_port()
    with Load(config) as load:
        time.sleep(0.5)
        killed = time.monotonic()
        os.kill(sentinels.primary.pid, signal.SIGKILL)
        while sentinels.primary_port() == old:
            assert time.monotonic() - killed < 30, "the sentinels did not fail over"
            time.sleep(0.05)
        failed_over = time.monotonic()
        before = Counter(load.calls)
        kinds = ("batch read", "batch write", "write")
        while time.monotonic() < failed_over + 1.0 + 3.0 and not all(load.calls[k] > before[k] for k in kinds):
            time.sleep(0.05)
        recovered = time.monotonic()
        time.sleep(0.3)
    assert all(load.calls[k] > before[k] for k in kinds), (before, load.calls)
    assert all(isinstance(e, (StoreUnavailable, BatchWriteError)) for e in load.errors)
    print(f"failover after {failed_over - killed:.2f} s; every kind of call served again {recovered - failed_over:.2f} s "
          f"later; {len(load.errors)} errors surfaced meanwhile")
    with sentinels.replica.client() as client:  # the promoted replica has the library (functions replicate)
        assert client.fcall_ro("fs_version", 0).decode() == library
    with FeatureStore(config) as store:
        load.acknowledged.update(ENTITIES)
        for entity in ENTITIES:
            assert store.get_feature_lineage(entity, "x")["latest_version"] <= load.acknowledged[entity] + 2, entity


async def test_the_sidecar_follows_a_failover_by_itself(sentinels, aiohttp_client) -> None:
    import asyncio

    from fsredis_server import ServerSettings, create_app

    config = FeatureStoreConfig(redis_url=sentinels.url, namespace="sent", read_timeout=1.0, write_timeout=3.0)
    client = await aiohttp_client(create_app(ServerSettings(store=config, check_interval=0.2)))
    assert (await client.put("/v1/features/e1", json={"features": {"x": 1.5}})).status == 200
    old = sentinels.primary_port()
    os.kill(sentinels.primary.pid, signal.SIGKILL)
    killed = time.monotonic()
    while sentinels.primary_port() == old:
        assert time.monotonic() - killed < 30, "the sentinels did not fail over"
        await asyncio.sleep(0.05)
    failed_over = time.monotonic()
    while True:  # the sidecar reads and writes again, and says it is ready, without a restart
        written = await client.put("/v1/features/e2", json={"features": {"x": 2.5}})
        read = await client.get("/v1/features/e1")
        ready = await client.get("/readyz")
        if written.status == read.status == ready.status == 200:
            break
        assert written.status in (200, 503) and read.status in (200, 503), (written.status, read.status)
        assert time.monotonic() - failed_over < 5.0, "the sidecar did not recover"
        await asyncio.sleep(0.1)
    assert (await read.json())["features"] == {"x": 1.5}  # (the replica had it)
