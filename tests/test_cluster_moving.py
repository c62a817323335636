"""Redis Cluster that moves under the clients: a live reshard, slots moved under an idle client, a
primary killed with replicas to take over. Readers and writers (single and batch, sync and async)
recover by themselves; no acknowledged write is lost or applied twice.

Each test builds its own small cluster (they reshard it or kill nodes of it)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from typing import Any

import pytest
from redis.crc import key_slot

from fsredis import AsyncFeatureStore, BatchWriteError, FeatureStore, FeatureStoreConfig, StoreUnavailable
from fsredis.keys import entity_keys
from tests.conftest import LocalCluster

pytestmark = [pytest.mark.timeout(240), pytest.mark.moving]

NAMESPACE = "moving"
ENTITIES = [f"e{i}" for i in range(240)]


@pytest.fixture
def cluster():
    made = LocalCluster()
    yield made
    made.stop()


def _config(cluster: LocalCluster, **overrides: Any) -> FeatureStoreConfig:
    settings = {"redis_url": cluster.url, "cluster": True, "namespace": NAMESPACE, "max_versions": 3,
                "enable_monitoring": False, **overrides}
    return FeatureStoreConfig(**settings)


def _ids(cluster: LocalCluster) -> dict[int, str]:
    """Node id of each node, by port."""
    out = {}
    for node in cluster.nodes:
        with node.client() as client:
            found = client.execute_command("CLUSTER", "MYID")
            out[node.port] = found.decode() if isinstance(found, bytes) else found
    return out


def _slots_of(cluster: LocalCluster, port: int) -> int:
    with cluster.nodes[0].client() as client:
        return sum(end - start + 1 for start, end, primary, *_ in client.cluster("slots") if primary[1] == port)


def _reshard(cluster: LocalCluster, source: int, target: int, slots: int) -> None:
    ids = _ids(cluster)
    subprocess.run(
        [cluster.cli, "--cluster", "reshard", f"127.0.0.1:{cluster.nodes[0].port}", "--cluster-from", ids[source],
         "--cluster-to", ids[target], "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "20"],
        check=True, capture_output=True, timeout=180,
    )


class Load:
    """Batch writers, batch readers and single writers on their own threads until stopped. Every
    write has a write id of its own and is sent again (same id) until acknowledged, so each entity
    must end with exactly as many versions as writes were acknowledged for it."""

    def __init__(self, config: FeatureStoreConfig) -> None:
        self.store = FeatureStore(config)
        self.acknowledged: Counter[str] = Counter()
        self.errors: list[BaseException] = []
        self.calls = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._batch_writer, self._batch_reader, self._single_writer)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        self.store.close()

    def _until_acknowledged(self, kind: str, send: Any) -> None:
        while not self.stop.is_set():
            try:
                send()
            except (StoreUnavailable, BatchWriteError) as exc:
                with self.lock:
                    self.errors.append(exc)
                continue
            with self.lock:
                self.calls[kind] += 1
            return

    def _batch_writer(self) -> None:
        for round_ in range(10**6):
            chunk = ENTITIES[(round_ * 40) % len(ENTITIES):][:40]
            ids = {e: f"b{round_}-{e}" for e in chunk}
            rows = {e: {"x": float(round_)} for e in chunk}
            self._until_acknowledged("batch write", lambda: self.store.write_features_batch(rows, write_ids=ids))
            if self.stop.is_set():
                return  # (its last batch may or may not have landed: not counted, and not checked)
            with self.lock:
                self.acknowledged.update(chunk)

    def _single_writer(self) -> None:
        for round_ in range(10**6):
            entity = ENTITIES[(round_ * 7) % len(ENTITIES)]
            self._until_acknowledged("write", lambda: self.store.write_features(entity, {"x": -1.0}, write_id=f"s{round_}"))
            if self.stop.is_set():
                return
            with self.lock:
                self.acknowledged[entity] += 1

    def _batch_reader(self) -> None:
        while not self.stop.is_set():
            self._until_acknowledged("batch read", lambda: self.store.get_features_batch(ENTITIES, ["x"]))

    def check_versions(self, store: FeatureStore) -> None:
        """Every entity has exactly one version per acknowledged write, give or take the writes in
        flight when the load stopped (at most one per writer)."""
        for entity in ENTITIES:
            latest = store.get_feature_lineage(entity, "x")["latest_version"] if self.acknowledged[entity] else 0
            assert self.acknowledged[entity] <= latest <= self.acknowledged[entity] + 2, entity


def test_batches_and_single_calls_ride_through_a_live_reshard(cluster) -> None:
    ports = [node.port for node in cluster.nodes]
    with FeatureStore(_config(cluster)) as store:
        store.write_features_batch({e: {"x": 0.0} for e in ENTITIES})
    with Load(_config(cluster)) as load:
        time.sleep(0.5)
        _reshard(cluster, ports[0], ports[1], 1500)
        _reshard(cluster, ports[1], ports[2], 1500)
        time.sleep(0.5)
    assert _slots_of(cluster, ports[0]) < 5461 - 1000  # the slots did move
    assert not load.errors, f"{len(load.errors)} errors reached the callers, first: {load.errors[0]!r}"
    assert load.calls["batch read"] > 5 and load.calls["batch write"] > 5 and load.calls["write"] > 5, load.calls
    with FeatureStore(_config(cluster)) as store:
        load.acknowledged.update(ENTITIES)  # the first write of each
        load.check_versions(store)


def test_slots_moved_under_an_idle_client_are_found_on_the_first_call(cluster) -> None:
    ports = [node.port for node in cluster.nodes]
    with FeatureStore(_config(cluster)) as store:
        store.write_features_batch({e: {"x": 1.0} for e in ENTITIES})
        assert store.get_features_batch(ENTITIES, ["x"])["e1"] == {"x": 1.0}
        _reshard(cluster, ports[0], ports[1], 3000)  # the client's slot map is now wrong for these
        found = store.get_features_batch(ENTITIES, ["x"])
        assert all(found[e] == {"x": 1.0} for e in ENTITIES)
        written = store.write_features_batch({e: {"x": 2.0} for e in ENTITIES})
        assert all(result.versions == {"x": 2} for result in written.values())
        assert store.get_features("e1", ["x"]) == {"x": 2.0}


def test_async_batches_follow_moved_slots_and_need_few_connections(cluster) -> None:
    """An async batch is one pipeline per node: 10,000 entities over 4 connections per node,
    before and after the slots move."""
    ports = [node.port for node in cluster.nodes]
    ids = [f"a{i}" for i in range(10_000)]

    async def scenario() -> None:
        async with AsyncFeatureStore(_config(cluster, max_connections=4)) as store:
            await store.write_features_batch({e: {"x": 1.0} for e in ids})
            assert (await store.get_features_batch(ids, ["x"]))["a7"] == {"x": 1.0}
            await asyncio.to_thread(_reshard, cluster, ports[2], ports[0], 2000)
            found = await store.get_features_batch(ids, ["x"])
            assert all(found[e] == {"x": 1.0} for e in ids)
            written = await store.write_features_batch({e: {"x": 2.0} for e in ids})
            assert all(result.versions == {"x": 2} for result in written.values())

    asyncio.run(scenario())


@pytest.fixture
def replicated_cluster():
    made = LocalCluster(replicas=1, node_timeout=1000)
    yield made
    made.stop()


def _primary_of(cluster: LocalCluster, key: str) -> Any:
    slot = key_slot(key.encode())
    with cluster.nodes[-1].client() as client:
        for start, end, primary, *_ in client.cluster("slots"):
            if start <= slot <= end:
                return next(node for node in cluster.nodes if node.port == primary[1])
    raise AssertionError("slot not served")


def test_batches_recover_from_a_killed_primary(replicated_cluster) -> None:
    """kill -9 of a primary with a replica: errors may surface while no node serves its slots
    (each within the call's deadline, typed StoreUnavailable), then the batches work again by
    themselves, within the failover time and a second; no acknowledged write is applied twice."""
    cluster = replicated_cluster
    with FeatureStore(_config(cluster)) as store:
        store.write_features_batch({e: {"x": 0.0} for e in ENTITIES})
    victim = _primary_of(cluster, entity_keys(NAMESPACE, "e1").entity)
    with Load(_config(cluster, read_timeout=1.0, write_timeout=3.0)) as load:
        time.sleep(0.5)
        killed = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        failed_over = None
        with cluster.nodes[0 if victim is not cluster.nodes[0] else 1].client() as client:
            while failed_over is None and time.monotonic() - killed < 30:
                if all(primary[1] != victim.port for _, _, primary, *_ in client.cluster("slots")):
                    failed_over = time.monotonic()
                time.sleep(0.05)
        assert failed_over is not None, "the cluster did not fail over"
        before = Counter(load.calls)
        deadline = failed_over + 1.0 + 3.0  # a write started just before may take its deadline to end
        while time.monotonic() < deadline and not all(load.calls[k] > before[k] for k in ("batch read", "batch write", "write")):
            time.sleep(0.05)
        recovered = time.monotonic()
        time.sleep(0.5)
    assert all(load.calls[k] > before[k] for k in ("batch read", "batch write", "write")), (before, load.calls)
    assert all(isinstance(e, (StoreUnavailable, BatchWriteError)) for e in load.errors)
    print(f"failover after {failed_over - killed:.2f} s; every kind of call served again {recovered - failed_over:.2f} s later; "
          f"{len(load.errors)} errors surfaced meanwhile")
    # A client whose URL names the dead node first starts from the others.
    hosts = ",".join(f"127.0.0.1:{node.port}" for node in sorted(cluster.nodes, key=lambda node: node is not victim))
    with FeatureStore(_config(cluster, redis_url=f"redis://{hosts}")) as store:
        load.acknowledged.update(ENTITIES)
        for entity in ENTITIES:  # an acknowledged write may be lost by an asynchronous replica; none is doubled
            assert store.get_feature_lineage(entity, "x")["latest_version"] <= load.acknowledged[entity] + 2, entity


def test_a_batch_write_says_what_was_written_and_what_is_unknown_and_is_safe_to_send_again(cluster) -> None:
    """A primary down without a replica: its entities end up ``unknown`` within the deadline (not
    refused), the others are written. Sent again with the same write ids once the node is back,
    the written ones are not applied twice and the unknown ones are written."""
    victim = _primary_of(cluster, entity_keys(NAMESPACE, "e1").entity)
    survivor = next(node for node in cluster.nodes if node is not victim)
    rows = {e: {"x": 1.0} for e in ENTITIES}
    with FeatureStore(_config(cluster, redis_url=survivor.url, write_timeout=1.0)) as store:
        store.write_features("e0", {"y": 0})  # (the client knows the slot map before the node dies)
        os.kill(victim.pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(BatchWriteError) as caught:
            store.write_features_batch(rows)
        assert time.monotonic() - started < 1.0 + 1.5  # within the deadline (and the last round's wait)
        error = caught.value
        on_victim = {e for e in ENTITIES if _primary_of(cluster, entity_keys(NAMESPACE, e).entity) is victim}
        assert "e1" in on_victim and set(error.unknown) == on_victim and not error.refused
        assert set(error.written) == set(ENTITIES) - on_victim
        assert set(error.write_ids) == set(ENTITIES)
        assert all(isinstance(error.errors[e], StoreUnavailable) for e in on_victim)

        victim.restart()  # (the same node: it keeps its nodes.conf, its slots, not its data)
        with victim.client() as client:
            limit = time.monotonic() + 30
            while client.cluster("info")["cluster_state"] != "ok" and time.monotonic() < limit:
                time.sleep(0.05)
        again = store.write_features_batch(rows, write_ids=error.write_ids)
        assert {e for e, result in again.items() if result.applied} == on_victim
        assert all(store.get_feature_lineage(e, "x")["latest_version"] == 1 for e in ENTITIES)
