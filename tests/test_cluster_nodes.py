"""Redis Cluster: the library and the registry on every primary, always — a primary joined by
hand, a registry change made by a client that did not know it yet, a primary left with an older
library (health_check names it; the sidecar reinstalls it by itself)."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
from redis.crc import key_slot

from fsredis import FeatureDefinition, FeatureStore, FeatureStoreConfig, ValidationError
from fsredis.embedded import EmbeddedServer, free_port
from fsredis.keys import entity_keys
from fsredis.library import bundled
from tests.conftest import LocalCluster
from tests.test_server import ready

pytestmark = [pytest.mark.timeout(180), pytest.mark.moving]

NAMESPACE = "nodes"


@pytest.fixture
def cluster():
    made = LocalCluster()
    yield made
    made.stop()


def _config(cluster: LocalCluster) -> FeatureStoreConfig:
    return FeatureStoreConfig(redis_url=cluster.url, cluster=True, namespace=NAMESPACE, enable_monitoring=False)


def _join_by_hand(cluster: LocalCluster, slots: int) -> EmbeddedServer:
    """A new primary met with a bare CLUSTER MEET (so it has no library), given ``slots`` slots."""
    bus = free_port()
    args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", str(bus))
    node = EmbeddedServer(persistence=False, extra_args=args).start()
    cluster.nodes.append(node)  # (stopped with the cluster)
    with cluster.nodes[0].client() as client:
        client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus)
    with node.client() as client:
        new_id = client.execute_command("CLUSTER", "MYID")
    new_id = new_id.decode() if isinstance(new_id, bytes) else new_id
    limit = time.monotonic() + 30
    for other in cluster.nodes:  # every node must know it (by gossip) before slots move to it
        with other.client() as client:
            while new_id not in str(client.execute_command("CLUSTER", "NODES")) and time.monotonic() < limit:
                time.sleep(0.05)
    entry = f"127.0.0.1:{cluster.nodes[0].port}"
    while subprocess.run([cluster.cli, "--cluster", "check", entry], capture_output=True, timeout=60).returncode:
        assert time.monotonic() < limit, "the nodes did not agree on the cluster's configuration"
        time.sleep(0.1)  # (until every node agrees on the configuration)
    subprocess.run([cluster.cli, "--cluster", "reshard", entry, "--cluster-from", "all", "--cluster-to", new_id,
                    "--cluster-slots", str(slots), "--cluster-yes"], check=True, capture_output=True, timeout=120)
    return node


def _entity_on(node: EmbeddedServer, cluster: LocalCluster) -> str:
    with cluster.nodes[0].client() as client:
        ranges = [(s, e) for s, e, primary, *_ in client.cluster("slots") if primary[1] == node.port]
    for i in range(100_000):
        slot = key_slot(entity_keys(NAMESPACE, f"p:{i}").entity.encode())
        if any(s <= slot <= e for s, e in ranges):
            return f"p:{i}"
    raise AssertionError("no entity on the new node")


def test_a_registry_change_reaches_a_primary_the_client_did_not_know(cluster) -> None:
    with FeatureStore(_config(cluster)) as store:
        store.write_features("p:0", {"price": 1.0})  # the client now has the library and a slot map
        newcomer = _join_by_hand(cluster, 300)
        with newcomer.client() as client:  # it got the library from someone else, with no registry
            client.function_load(bundled().source, replace=True)
        entity = _entity_on(newcomer, cluster)
        store.register_features("p", [FeatureDefinition("price", dtype="float", min=0.0)])
        with pytest.raises(ValidationError) as refused:
            store.write_features(entity, {"price": -5.0})
        assert refused.value.rule == "min"
        assert store.write_features(entity, {"price": 5.0}).versions == {"price": 1}
        health = store.health_check()
        assert health["status"] == "healthy" and "lagging_nodes" not in health, health


def test_a_primary_joined_by_hand_gets_the_library_at_the_first_call(cluster) -> None:
    with FeatureStore(_config(cluster)) as store:
        store.write_features("p:0", {"price": 1.0})
        newcomer = _join_by_hand(cluster, 300)
        entity = _entity_on(newcomer, cluster)
        assert store.write_features(entity, {"price": 2.0}).versions == {"price": 1}
        assert store.get_features_batch([entity, "p:0"], ["price"]) == {entity: {"price": 2.0}, "p:0": {"price": 1.0}}
        with newcomer.client() as client:
            assert client.fcall_ro("fs_version", 0).decode() == store.library.version


def test_health_names_a_primary_with_an_older_registry_and_load_library_mends_it(cluster) -> None:
    with FeatureStore(_config(cluster)) as store:
        store.register_features("p", [FeatureDefinition("price", dtype="float", min=0.0)])
        assert store.health_check()["status"] == "healthy"
        behind = cluster.nodes[1]
        with behind.client() as client:  # the library as it was before the registry change
            client.function_load(bundled().source, replace=True)
        health = store.health_check()
        assert health["status"] == "degraded"
        assert list(health["lagging_nodes"]) == [f"127.0.0.1:{behind.port}"]
        assert "registry version 0" in health["lagging_nodes"][f"127.0.0.1:{behind.port}"]
        store.load_library()
        assert store.health_check()["status"] == "healthy"


async def test_the_sidecar_reinstalls_the_library_on_a_lagging_primary(cluster, aiohttp_client) -> None:
    from fsredis_server import ServerSettings, create_app

    config = FeatureStoreConfig(redis_url=cluster.url, cluster=True, namespace=NAMESPACE)
    with FeatureStore(config) as store:
        store.register_features("p", [FeatureDefinition("price", dtype="float", min=0.0)])
    behind = cluster.nodes[2]
    # (a check may take half the interval: 0.25 s, so that a busy machine does not make it fail)
    client = await aiohttp_client(create_app(ServerSettings(store=config, check_interval=0.5)))
    await ready(client)
    with behind.client() as raw:
        raw.function_load(bundled().source, replace=True)  # the library as it was before the change
        assert raw.fcall_ro("fs_registry_version", 0, NAMESPACE) == 0
        limit = time.monotonic() + 10
        while raw.fcall_ro("fs_registry_version", 0, NAMESPACE) == 0 and time.monotonic() < limit:
            await asyncio.sleep(0.05)
        assert raw.fcall_ro("fs_registry_version", 0, NAMESPACE) == 1  # reinstalled, with the registry
