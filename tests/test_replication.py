"""min_replicas: a write is acknowledged only once that many replicas confirmed it (WAIT), else
NotReplicated — on one server with a replica, and on a cluster with a replica per primary."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from fsredis import BatchWriteError, FeatureStoreConfig, NotReplicated
from fsredis.embedded import EmbeddedServer
from fsredis.keys import entity_keys
from tests.conftest import LocalCluster, make_store

pytestmark = [pytest.mark.timeout(120), pytest.mark.moving]


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[EmbeddedServer, EmbeddedServer]]:
    """A primary and its replica."""
    primary = EmbeddedServer(persistence=False).start()
    replica = EmbeddedServer(persistence=False, extra_args=("--replicaof", "127.0.0.1", str(primary.port))).start()
    try:
        with primary.client() as client:
            limit = time.monotonic() + 20
            while client.info("replication")["connected_slaves"] < 1 or client.wait(1, 100) < 1:
                assert time.monotonic() < limit, "the replica did not connect"
                time.sleep(0.05)
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


class Paused:
    """A server frozen (SIGSTOP) for the length of the block: it confirms nothing."""

    def __init__(self, server: EmbeddedServer) -> None:
        self.server = server

    def __enter__(self) -> None:
        os.kill(self.server.pid, signal.SIGSTOP)

    def __exit__(self, *exc: object) -> None:
        os.kill(self.server.pid, signal.SIGCONT)


def test_a_write_confirmed_by_a_replica_is_on_the_replica(pair, namespace, client_kind) -> None:
    primary, replica = pair
    store = make_store(client_kind, FeatureStoreConfig(redis_url=primary.url, namespace=namespace, min_replicas=1,
                                                         replica_timeout=5.0))
    try:
        result = store.write_features("e1", {"x": 1.5})
        assert result.versions == {"x": 1}
        with replica.client() as client:  # WAIT returned: the replica has it now, no polling needed
            assert client.hexists(entity_keys(namespace, "e1").entity, "x")
        batch = store.write_features_batch({f"b{i}": {"x": float(i)} for i in range(20)})
        assert all(r.applied for r in batch.values())
    finally:
        store.close()


def test_a_write_no_replica_confirms_in_time_is_not_replicated(pair, namespace, client_kind) -> None:
    primary, replica = pair
    config = FeatureStoreConfig(redis_url=primary.url, namespace=namespace, min_replicas=1, replica_timeout=0.2)
    store = make_store(client_kind, config)
    try:
        with Paused(replica):
            started = time.monotonic()
            with pytest.raises(NotReplicated) as caught:
                store.write_features("e1", {"x": 2.5}, write_id="w1")
            assert time.monotonic() - started < 2.0
            assert caught.value.acknowledged == 0 and caught.value.wanted == 1
            assert caught.value.result.versions == {"x": 1}  # the primary applied it
            assert store.get_features("e1", ["x"]) == {"x": 2.5}
            with pytest.raises(BatchWriteError) as batch:
                store.write_features_batch({"a": {"x": 1.0}, "b": {"x": 2.0}})
            assert sorted(batch.value.unknown) == ["a", "b"] and not batch.value.refused
            assert store.write_features("e2", {"x": 1.0}, min_replicas=0).versions == {"x": 1}  # per call
        # (the replica catching up may take a moment on a busy machine: a patient store confirms)
        patient = make_store(client_kind, dataclasses.replace(config, replica_timeout=5.0))
        try:
            again = patient.write_features("e1", {"x": 2.5}, write_id="w1")  # sent again: confirmed, not doubled
            assert not again.applied
            assert patient.get_feature_lineage("e1", "x")["latest_version"] == 1
        finally:
            patient.close()
        with pytest.raises(NotReplicated) as two:
            store.write_features("e3", {"x": 1.0}, min_replicas=2)  # there is one replica
        assert two.value.acknowledged <= 1
    finally:
        store.close()


def test_a_write_sent_again_is_confirmed_only_once_the_replicas_have_it(pair, namespace) -> None:
    """A write applied before (same write id) changes nothing when sent again, but its WAIT must
    still wait for the first application: from another connection, too."""
    primary, replica = pair
    config = FeatureStoreConfig(redis_url=primary.url, namespace=namespace, min_replicas=1, replica_timeout=0.2)
    first, other = make_store("sync", config), make_store("sync", config)
    try:
        with Paused(replica):
            with pytest.raises(NotReplicated):
                first.write_features("e1", {"x": 1.0}, write_id="again")
            with pytest.raises(NotReplicated):  # a new connection that wrote nothing: WAIT must not answer at once
                other.write_features("e1", {"x": 1.0}, write_id="again")
        patient = make_store("sync", dataclasses.replace(config, replica_timeout=5.0))
        try:
            assert not patient.write_features("e1", {"x": 1.0}, write_id="again").applied
            assert patient.get_feature_lineage("e1", "x")["latest_version"] == 1
        finally:
            patient.close()
    finally:
        first.close()
        other.close()


def test_min_replicas_is_checked(pair, namespace) -> None:
    with pytest.raises(ValueError, match="min_replicas"):
        FeatureStoreConfig(min_replicas=-1)
    store = make_store("sync", FeatureStoreConfig(redis_url=pair[0].url, namespace=namespace))
    try:
        with pytest.raises(ValueError, match="min_replicas"):
            store.write_features("e1", {"x": 1.0}, min_replicas=True)
    finally:
        store.close()


def test_on_a_cluster_each_primary_waits_for_its_own_replicas(client_kind) -> None:
    cluster = LocalCluster(replicas=1)
    try:
        config = FeatureStoreConfig(redis_url=cluster.url, cluster=True, namespace="repl", min_replicas=1,
                                    replica_timeout=0.3)
        store = make_store(client_kind, config)
        patient = make_store(client_kind, dataclasses.replace(config, replica_timeout=5.0))
        try:
            rows = {f"e{i}": {"x": float(i)} for i in range(60)}
            assert all(r.applied for r in patient.write_features_batch(rows).values())
            with cluster.nodes[0].client() as client:
                slots = client.cluster("slots")
            def serving(entity: str) -> tuple[int, int]:  # (primary port, replica port) of its slot
                slot = key_slot(entity_keys("repl", entity).entity.encode())
                _, _, primary, replica, *_ = next(r for r in slots if r[0] <= slot <= r[1])
                return primary[1], replica[1]

            frozen = next(node for node in cluster.nodes if node.port == serving("e1")[1])
            with Paused(frozen):
                with pytest.raises(BatchWriteError) as caught:
                    store.write_features_batch(rows)
            behind = {e for e in rows if serving(e) == serving("e1")}
            assert "e1" in behind and set(caught.value.unknown) <= behind
            assert {e for e in rows if e not in behind} <= set(caught.value.written)
        finally:
            store.close()
            patient.close()
    finally:
        cluster.stop()


def test_reads_from_replicas_on_a_cluster(client_kind) -> None:
    """read_from_replicas: single and batch reads are served by replicas (after READONLY), and
    by the primary when the replica does not answer."""
    cluster = LocalCluster(replicas=1)
    try:
        config = FeatureStoreConfig(redis_url=cluster.url, cluster=True, namespace="repl", min_replicas=1,
                                    read_from_replicas=True, read_timeout=4.0, replica_timeout=5.0)
        store = make_store(client_kind, config)
        try:
            rows = {f"e{i}": {"x": float(i)} for i in range(60)}
            store.write_features_batch(rows)  # (min_replicas=1: every replica has them)
            with cluster.nodes[0].client() as client:
                slots = client.cluster("slots")
            replicas = {r[3][1] for r in slots}

            def reads_on(ports: set[int]) -> int:
                total = 0
                for node in cluster.nodes:
                    if node.port in ports:
                        with node.client() as client:
                            total += client.info("commandstats").get("cmdstat_fcall_ro", {}).get("calls", 0)
                return total

            before = reads_on(replicas)
            assert store.get_features_batch(list(rows), ["x"]) == rows
            assert store.get_features("e7", ["x"]) == {"x": 7.0}
            assert reads_on(replicas) > before  # the replicas served them
            slot = key_slot(entity_keys("repl", "e1").entity.encode())
            replica_port = next(r[3][1] for r in slots if r[0] <= slot <= r[1])
            with Paused(next(node for node in cluster.nodes if node.port == replica_port)):
                assert store.get_features_batch(list(rows), ["x"]) == rows  # its primary answers instead
        finally:
            store.close()
    finally:
        cluster.stop()
    with pytest.raises(ValueError, match="cluster=True"):
        FeatureStoreConfig(read_from_replicas=True)
