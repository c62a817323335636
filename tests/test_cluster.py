"""Redis Cluster: every entity in one slot, calls routed to their node, batches split by slot."""

from __future__ import annotations

import time

import numpy as np
import pytest
from redis.crc import key_slot

from fsredis import FeatureDefinition, FeatureStoreConfig, NotFound, SchemaError, ValidationError
from fsredis.keys import entity_keys
from tests.conftest import make_store


@pytest.fixture
def cluster_store(local_cluster, namespace, transport, client_kind):
    store = make_store(client_kind, FeatureStoreConfig(
        redis_url=local_cluster.url, cluster=True, namespace=namespace, transport=transport, max_versions=3,
    ))
    yield store
    store.close()


def _nodes_of(local_cluster, namespace, ids) -> set[int]:
    """Which cluster nodes hold these entities (by slot ownership)."""
    owners = set()
    with local_cluster.nodes[0].client() as client:
        ranges = client.cluster("slots")
    for entity_id in ids:
        slot = key_slot(entity_keys(namespace, entity_id).entity.encode())
        for start, end, primary, *_ in ranges:
            if start <= slot <= end:
                owners.add(primary[1])
    return owners


def test_reads_and_writes_across_nodes(cluster_store, local_cluster, namespace) -> None:
    ids = [f"user{i}" for i in range(60)]
    assert len(_nodes_of(local_cluster, namespace, ids)) == 3
    cluster_store.write_features_batch({e: {"age": i, "vec": np.full(4, i, dtype=np.float32)} for i, e in enumerate(ids)})
    cluster_store.write_features("user7", {"age": 70})
    assert cluster_store.get_features("user7", ["age"]) == {"age": 70}
    batch = cluster_store.get_features_batch(ids + ["nobody"], ["age", "vec"])
    assert list(batch) == ids + ["nobody"]
    assert batch["user3"]["age"] == 3 and batch["user7"]["age"] == 70 and batch["nobody"] == {}
    np.testing.assert_array_equal(batch["user59"]["vec"], np.full(4, 59))
    everything = cluster_store.get_features_batch(ids[:3])
    assert [everything[e]["age"] for e in ids[:3]] == [0, 1, 2]


def test_lineage_rollback_delete_on_a_cluster(cluster_store) -> None:
    for price in (1.0, 2.0, 3.0):
        cluster_store.write_features("p1", {"price": price}, source="feed")
    assert cluster_store.rollback_feature("p1", "price", 2) == 4
    lineage = cluster_store.get_feature_lineage("p1", "price")
    assert [v["value"] for v in lineage["versions"]] == [2.0, 3.0, 2.0]
    with pytest.raises(NotFound):
        cluster_store.rollback_feature("p1", "price", 1)
    assert cluster_store.delete_features("p1") == 1
    assert cluster_store.get_features("p1") == {}


def test_ttl_on_a_cluster(cluster_store) -> None:
    cluster_store.write_features("s1", {"flash": 1, "steady": 2}, ttl={"flash": 0.15})
    time.sleep(0.25)
    assert cluster_store.get_features("s1", ["flash", "steady"]) == {"steady": 2}


def test_library_reloaded_on_every_primary(cluster_store, local_cluster) -> None:
    cluster_store.write_features("e1", {"a": 1})
    for node in local_cluster.nodes:
        with node.client() as client:
            client.function_flush()
            client.script_flush()
    assert cluster_store.get_features_batch([f"x{i}" for i in range(30)] + ["e1"], ["a"])["e1"] == {"a": 1}
    for node in local_cluster.nodes:
        with node.client() as client:
            assert client.fcall_ro("fs_version", 0) == cluster_store.library.version.encode()
    health = cluster_store.health_check()
    assert health["status"] == "healthy" and health["library_version"] == cluster_store.library.version


def test_the_registry_is_enforced_on_every_primary(cluster_store, local_cluster, namespace) -> None:
    ids = [f"product:{i}" for i in range(30)]
    assert len(_nodes_of(local_cluster, namespace, ids)) == 3
    cluster_store.register_features("product", [FeatureDefinition("price", "float", min=0)])
    cluster_store.write_features("product:0", {"price": 5.0})
    with pytest.raises(SchemaError, match="product:price"):  # has data on some node: refused
        cluster_store.register_features("product", [FeatureDefinition("price", "string")])
    for entity in ids:
        with pytest.raises(ValidationError, match="rule=min"):
            cluster_store.write_features(entity, {"price": -1.0})
    assert cluster_store.health_check()["registry_version"] == 1
    for node in local_cluster.nodes:  # every primary runs the same registry, and a reload keeps it
        with node.client() as client:
            assert client.fcall_ro("fs_registry_version", 0, namespace) == 1
            client.function_flush()
    with pytest.raises(ValidationError, match="rule=min"):
        cluster_store.write_features("product:7", {"price": -1.0})
    cluster_store.compute_and_store_features_batch({e: {"price": 3.0} for e in ids})
    assert cluster_store.get_features_batch(ids, ["price_bucket"])["product:29"] == {"price_bucket": 0}
