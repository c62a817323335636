"""The public API against real servers, over server x transport x sync/async."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import numpy as np
import pytest

from fsredis import AsyncFeatureStore, FeatureStore, NotFound, StoreClosed, ValidationError
from fsredis.keys import entity_keys
from tests.conftest import entity_keys_in


def test_round_trip_of_every_type(store) -> None:
    embedding = np.random.default_rng(1).random(768)
    at = datetime(2026, 11, 26, 12, 30, 15, 123456, tzinfo=timezone.utc)
    features = {
        "price": 999.99,
        "stock": 42,
        "big": -(2**63),
        "category": "électronique",
        "in_stock": False,
        "discontinued_at": None,
        "launched": at,
        "sizes": [38, 39.5, "XL", True, None],
        "text_embedding": embedding,
        "small_embedding": np.arange(8, dtype=np.float16),
    }
    assert store.write_features("product-1", features)
    got = store.get_features("product-1", list(features))
    assert set(got) == set(features)
    for name in ("price", "stock", "big", "category", "in_stock", "discontinued_at", "launched", "sizes"):
        assert got[name] == features[name], name
        assert type(got[name]) is type(features[name]), name
    assert got["text_embedding"].dtype == np.float32
    assert got["text_embedding"].shape == (768,)
    np.testing.assert_array_equal(got["text_embedding"], embedding.astype(np.float32))
    assert got["small_embedding"].dtype == np.float16
    np.testing.assert_array_equal(got["small_embedding"], np.arange(8, dtype=np.float16))


def test_missing_features_and_entities_are_absent(store) -> None:
    store.write_features("e1", {"a": 1})
    assert store.get_features("e1", ["a", "b"]) == {"a": 1}
    assert store.get_features("nobody", ["a"]) == {}
    assert store.get_features("e1", []) == {}


def test_get_all_features_when_no_names(store) -> None:
    store.write_features("e1", {"a": 1, "b": "two", "c": [3]})
    assert store.get_features("e1") == {"a": 1, "b": "two", "c": [3]}
    assert store.get_features("nobody") == {}


def test_overwrite_keeps_other_features(store) -> None:
    store.write_features("e1", {"a": 1, "b": 2})
    store.write_features("e1", {"a": 10})
    assert store.get_features("e1") == {"a": 10, "b": 2}


def test_batch_read(store) -> None:
    for i in range(20):
        store.write_features(f"u{i}", {"age": i, "name": f"user {i}"} if i % 2 else {"age": i})
    got = store.get_features_batch([f"u{i}" for i in range(20)] + ["ghost"], ["age", "name"])
    assert list(got) == [f"u{i}" for i in range(20)] + ["ghost"]
    assert got["u3"] == {"age": 3, "name": "user 3"}
    assert got["u4"] == {"age": 4}
    assert got["ghost"] == {}


def test_batch_read_larger_than_one_call(store) -> None:
    ids = [f"item{i}" for i in range(1203)]
    store.write_features_batch({e: {"n": i} for i, e in enumerate(ids)})
    got = store.get_features_batch(ids, ["n", "absent"])
    assert len(got) == 1203
    assert all(got[e] == {"n": i} for i, e in enumerate(ids))


def test_batch_read_of_all_features(store) -> None:
    store.write_features("a", {"x": 1, "y": 2})
    store.write_features("b", {"z": 3})
    assert store.get_features_batch(["a", "b", "c"]) == {"a": {"x": 1, "y": 2}, "b": {"z": 3}, "c": {}}


def test_batch_write_versions_each_entity(store) -> None:
    store.write_features_batch({"a": {"x": 1}, "b": {"x": 2}}, source="nightly")
    store.write_features_batch({"a": {"x": 3}})
    lineage = store.get_feature_lineage("a", "x")
    assert lineage["current_version"] == 2
    assert [v["value"] for v in lineage["versions"]] == [3, 1]
    assert lineage["versions"][1]["source"] == "nightly"
    assert store.get_features("b", ["x"]) == {"x": 2}


def test_multi_feature_write_is_atomic_on_a_server_side_rule(store, server, config) -> None:
    store.write_features("e1", {"a": 1})
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"a": 2, "b": 3, "bad name!": 4})
    assert caught.value.feature == "bad name!"
    assert caught.value.rule == "name"
    assert store.get_features("e1") == {"a": 1}
    assert store.get_feature_lineage("e1", "a")["current_version"] == 1
    assert store.get_feature_lineage("e1", "b")["current_version"] == 0


def test_multi_feature_write_is_atomic_on_a_client_side_rule(store, server, config) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"a": 2, "b": float("nan")})
    assert (caught.value.feature, caught.value.rule) == ("b", "finite")
    assert entity_keys_in(server, config.namespace) == []


def test_one_feature_expires_while_its_siblings_live(store) -> None:
    store.write_features("e1", {"flash": 1, "steady": 2}, ttl={"flash": 0.2, "steady": 60})
    assert store.get_features("e1", ["flash", "steady"]) == {"flash": 1, "steady": 2}
    time.sleep(0.3)
    assert store.get_features("e1", ["flash", "steady"]) == {"steady": 2}
    assert store.get_features("e1") == {"steady": 2}
    assert store.get_features_batch(["e1"], ["flash", "steady"]) == {"e1": {"steady": 2}}


def test_default_ttls_by_kind(open_store, server, namespace, transport) -> None:
    from fsredis import FeatureStoreConfig

    store = open_store(FeatureStoreConfig(
        redis_url=server.url, namespace=namespace, transport=transport, default_ttl=0.2, embedding_ttl=60,
    ))
    store.write_features("e1", {"price": 1.0, "vec": np.ones(4)})
    time.sleep(0.3)
    got = store.get_features("e1", ["price", "vec"])
    assert list(got) == ["vec"]


def test_entity_keys_expire_with_the_last_feature(store, server, config) -> None:
    store.write_features("e1", {"a": 1, "b": 2}, ttl={"a": 5, "b": 30})
    keys = entity_keys(config.namespace, "e1")
    with server.client() as client:
        assert 25_000 < client.pttl(keys.entity) <= 30_000
    store.write_features("e1", {"c": 3}, ttl=None)  # default_ttl 3600
    with server.client() as client:
        assert 3_500_000 < client.pttl(keys.entity) <= 3_600_000


def test_a_feature_without_ttl_keeps_the_entity(open_store, server, namespace) -> None:
    from fsredis import FeatureStoreConfig

    store = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, default_ttl=None))
    store.write_features("e1", {"forever": 1})
    store.write_features("e1", {"brief": 2}, ttl=0.1)
    keys = entity_keys(namespace, "e1")
    with server.client() as client:
        assert client.pttl(keys.entity) == -1


def test_fully_expired_entity_leaves_no_keys(store, server, config) -> None:
    store.write_features("e1", {"a": 1, "b": np.ones(3)}, ttl=0.15)
    store.write_features("e1", {"a": 2}, ttl=0.15)
    time.sleep(0.4)
    assert store.get_features("e1") == {}
    with server.client() as client:
        deadline = time.monotonic() + 5
        while entity_keys_in(server, config.namespace) and time.monotonic() < deadline:
            for key in entity_keys_in(server, config.namespace):
                client.exists(key)  # touching an expired key removes it
            time.sleep(0.05)
    assert entity_keys_in(server, config.namespace) == []


def test_expired_value_stays_in_history(store) -> None:
    store.write_features("e1", {"a": "old", "keep": 1}, ttl={"a": 0.1, "keep": 60})
    time.sleep(0.2)
    store.write_features("e1", {"b": 1})  # purges the expired feature
    lineage = store.get_feature_lineage("e1", "a")
    assert lineage["current_version"] == 1
    assert lineage["versions"][0]["value"] == "old"
    assert lineage["versions"][0]["expired"] is True
    assert store.get_features("e1", ["a"]) == {}


def test_versions_count_by_one_and_history_is_trimmed(store, config) -> None:
    for i in range(1, 13):
        store.write_features("e1", {"x": i, "y": -i} if i % 3 == 0 else {"x": i})
    lineage = store.get_feature_lineage("e1", "x")
    assert lineage["current_version"] == 12
    assert [v["version"] for v in lineage["versions"]] == [12, 11, 10, 9, 8]
    assert [v["value"] for v in lineage["versions"]] == [12, 11, 10, 9, 8]
    assert len(lineage["versions"]) == config.max_versions
    y = store.get_feature_lineage("e1", "y")
    assert [v["value"] for v in y["versions"]] == [-12, -9, -6, -3]
    assert store.get_feature_lineage("e1", "x", limit=2)["versions"][1]["version"] == 11


def test_lineage_records_source_time_and_extra_fields(store) -> None:
    before = time.time()
    store.write_features(
        "e1", {"score": 0.5}, source="batch-job",
        lineage={"producer": "ranker", "producer_version": 3, "inputs": ["clicks", "views"]},
        write_id="w-1",
    )
    after = time.time()
    store.write_features("e1", {"score": 0.75})
    lineage = store.get_feature_lineage("e1", "score")
    assert lineage["entity_id"] == "e1" and lineage["feature"] == "score"
    newest, oldest = lineage["versions"]
    assert newest["value"] == 0.75 and newest["source"] is None and newest["version"] == 2
    assert oldest["value"] == 0.5 and oldest["source"] == "batch-job"
    assert oldest["producer"] == "ranker" and oldest["producer_version"] == 3
    assert oldest["inputs"] == ["clicks", "views"]
    assert oldest["write_id"] == "w-1"
    assert before - 1 <= oldest["timestamp"] <= after + 1
    assert newest["timestamp"] >= oldest["timestamp"]
    assert oldest["expires_at"] == pytest.approx(oldest["timestamp"] + 3600, abs=0.01)


def test_lineage_of_unknown_feature(store) -> None:
    lineage = store.get_feature_lineage("nobody", "x")
    assert lineage["current_version"] == 0 and lineage["versions"] == []


def test_embedding_history(store) -> None:
    first, second = np.ones(16), np.full(16, 2.0)
    store.write_features("e1", {"vec": first})
    store.write_features("e1", {"vec": second})
    values = [v["value"] for v in store.get_feature_lineage("e1", "vec")["versions"]]
    np.testing.assert_array_equal(values[0], second)
    np.testing.assert_array_equal(values[1], first)


def test_rollback_appends_a_new_version(store) -> None:
    for price in (10.0, 12.0, 99.0):
        store.write_features("p1", {"price": price})
    assert store.rollback_feature("p1", "price", 2) == 4
    assert store.get_features("p1", ["price"]) == {"price": 12.0}
    lineage = store.get_feature_lineage("p1", "price")
    assert [v["value"] for v in lineage["versions"]] == [12.0, 99.0, 12.0, 10.0]
    assert lineage["versions"][0]["rolled_back_from"] == 2
    assert lineage["versions"][0]["source"] == "rollback"


def test_rollback_of_an_embedding_restores_array_and_ttl(store) -> None:
    store.write_features("p1", {"vec": np.ones(4)})
    store.write_features("p1", {"vec": np.zeros(4)}, ttl=5)
    assert store.rollback_feature("p1", "vec", 1) == 3
    np.testing.assert_array_equal(store.get_features("p1", ["vec"])["vec"], np.ones(4))
    lineage = store.get_feature_lineage("p1", "vec")
    assert lineage["expires_at"] - lineage["versions"][0]["timestamp"] == pytest.approx(86400, abs=0.01)


def test_rollback_to_current_version(store) -> None:
    store.write_features("p1", {"price": 1.0})
    assert store.rollback_feature("p1", "price", 1) == 2
    assert store.get_features("p1", ["price"]) == {"price": 1.0}


def test_rollback_errors(store, config) -> None:
    for i in range(config.max_versions + 2):
        store.write_features("p1", {"price": float(i)})
    with pytest.raises(NotFound) as caught:
        store.rollback_feature("p1", "price", 1)
    assert (caught.value.feature, caught.value.rule) == ("price", "trimmed")
    with pytest.raises(NotFound) as caught:
        store.rollback_feature("p1", "price", 99)
    assert caught.value.rule == "version"
    with pytest.raises(NotFound):
        store.rollback_feature("p1", "nothing", 1)
    with pytest.raises(ValidationError):
        store.rollback_feature("p1", "price", 0)
    assert store.get_feature_lineage("p1", "price")["current_version"] == config.max_versions + 2


def test_delete_features(store, server, config) -> None:
    store.write_features("e1", {"a": 1, "b": 2})
    store.write_features("e1", {"a": 3})
    assert store.delete_features("e1", ["a", "never"]) == 1
    assert store.get_features("e1") == {"b": 2}
    assert store.get_feature_lineage("e1", "a")["current_version"] == 0
    store.write_features("e1", {"a": 5})
    assert store.get_feature_lineage("e1", "a")["current_version"] == 1
    assert store.delete_features("e1", []) == 0
    assert store.delete_features("e1", ["a", "b"]) == 2
    assert entity_keys_in(server, config.namespace) == []


def test_delete_entity(store, server, config) -> None:
    store.write_features("e1", {"a": 1, "b": np.ones(3)})
    store.write_features("e2", {"a": 1})
    assert store.delete_features("e1") == 2
    assert store.get_features("e1") == {}
    assert store.delete_features("e1") == 0
    assert all(b"{e2}" in key for key in entity_keys_in(server, config.namespace))


def test_same_write_id_is_applied_once(store) -> None:
    assert store.write_features("e1", {"x": 1}, write_id="retry-me")
    assert store.write_features("e1", {"x": 2}, write_id="retry-me")
    assert store.get_features("e1", ["x"]) == {"x": 1}
    assert store.get_feature_lineage("e1", "x")["current_version"] == 1
    store.write_features("e2", {"x": 2}, write_id="retry-me")  # ids are per entity
    assert store.get_features("e2", ["x"]) == {"x": 2}
    assert store.rollback_feature("e1", "x", 1, write_id="rb") == 2
    assert store.rollback_feature("e1", "x", 1, write_id="rb") == 2
    assert store.get_feature_lineage("e1", "x")["current_version"] == 2


def test_refused_write_does_not_consume_its_write_id(store) -> None:
    with pytest.raises(ValidationError):
        store.write_features("e1", {"ok": 1, "": 2}, write_id="w")
    store.write_features("e1", {"ok": 1}, write_id="w")
    assert store.get_features("e1", ["ok"]) == {"ok": 1}


def test_versioning_off_keeps_counting_without_history(open_store, server, namespace, client_kind) -> None:
    from fsredis import FeatureStoreConfig

    store = open_store(
        FeatureStoreConfig(redis_url=server.url, namespace=namespace, enable_versioning=False), client_kind
    )
    store.write_features("e1", {"x": 1})
    store.write_features("e1", {"x": 2})
    lineage = store.get_feature_lineage("e1", "x")
    assert lineage["current_version"] == 2
    assert [(v["version"], v["value"], v["timestamp"]) for v in lineage["versions"]] == [(2, 2, None)]
    with pytest.raises(NotFound):
        store.rollback_feature("e1", "x", 1)


def test_health_check(store, server) -> None:
    health = store.health_check()
    assert health["status"] == "healthy"
    assert health["redis_connected"] is True
    assert health["library_version"] == store.library.version
    assert health["server"]["name"] in ("valkey", "redis")
    assert health["server"]["version"].split(".")[0] in ("7", "8")
    assert health["ping_ms"] > 0


def test_performance_metrics(store) -> None:
    store.write_features("e1", {"a": 1, "b": 2})
    store.get_features("e1", ["a", "b", "c", "d"])
    store.get_features_batch(["e1", "e2"], ["a"])
    metrics = store.get_performance_metrics()
    assert metrics["cache_hit_rate"] == pytest.approx(3 / 6)
    assert metrics["features_requested"] == 6
    assert metrics["operations"]["get_features"]["calls"] == 1
    assert metrics["operations"]["write_features"]["p99_ms"] > 0
    assert metrics["average_computation_time"] == 0.0
    with pytest.raises(ValidationError):
        store.write_features("e1", {"a": float("inf")})
    assert store.get_performance_metrics()["operations"]["write_features"]["errors"] == 1


def test_reads_and_writes_survive_script_and_function_flush(store, server) -> None:
    store.write_features("e1", {"a": 1})
    with server.client() as client:
        client.script_flush()
        client.function_flush()
    assert store.get_features("e1", ["a"]) == {"a": 1}
    with server.client() as client:
        client.script_flush()
        client.function_flush()
    store.write_features("e1", {"a": 2})
    with server.client() as client:
        client.script_flush()
        client.function_flush()
    store.write_features_batch({"e1": {"a": 3}, "e2": {"a": 4}})
    with server.client() as client:
        client.script_flush()
        client.function_flush()
    assert store.get_features_batch(["e1", "e2"], ["a"]) == {"e1": {"a": 3}, "e2": {"a": 4}}
    assert store.get_feature_lineage("e1", "a")["current_version"] == 3


def test_a_stale_library_is_replaced(store, server) -> None:
    with server.client() as client:
        client.function_load(
            "#!lua name=fsredis\nredis.register_function{function_name='fs_version', "
            "callback=function() return 'old' end, flags={'no-writes'}}",
            replace=True,
        )
    assert store.get_features("e1", ["a"]) == {}
    with server.client() as client:
        assert client.fcall_ro("fs_version", 0) == store.library.version.encode()


def test_lowering_max_versions_trims_older_records(open_store, server, namespace, transport) -> None:
    from fsredis import FeatureStoreConfig

    def config(max_versions: int) -> FeatureStoreConfig:
        return FeatureStoreConfig(redis_url=server.url, namespace=namespace, transport=transport,
                                  max_versions=max_versions)

    wide = open_store(config(8))
    for i in range(8):
        wide.write_features("e1", {"x": i, "y": i})
    narrow = open_store(config(3))
    narrow.write_features("e1", {"x": 8})
    assert [v["version"] for v in wide.get_feature_lineage("e1", "x")["versions"]] == [9, 8, 7]
    assert len(wide.get_feature_lineage("e1", "y")["versions"]) == 8  # trimmed on its own next write
    narrow.write_features("e1", {"y": 9})
    assert [v["value"] for v in wide.get_feature_lineage("e1", "y")["versions"]] == [9, 7, 6]
    with server.client() as client:
        fields = client.hkeys(entity_keys(namespace, "e1").entity)
    # Writes 1-8 wrote x and y, 9 wrote x, 10 y: the kept versions point at records 7 to 10 only.
    assert sorted(int(f[1:]) for f in fields if f[1:].isdigit()) == [7, 8, 9, 10]


def test_thousands_of_features_in_one_entity(store) -> None:
    features = {f"f{i}": i for i in range(3000)}
    store.write_features("wide", features)
    assert store.get_features("wide", list(features)) == features
    assert store.get_features("wide") == features
    assert store.get_features_batch(["wide"], [f"f{i}" for i in range(0, 3000, 7)])["wide"]["f2996"] == 2996
    store.write_features("wide", {f"f{i}": -i for i in range(2500)})
    assert store.get_feature_lineage("wide", "f2499")["current_version"] == 2
    assert store.delete_features("wide") == 3000


def test_extending_the_earliest_ttl_keeps_the_feature(store) -> None:
    store.write_features("e1", {"a": 1, "b": 2}, ttl={"a": 0.2, "b": 60})
    store.write_features("e1", {"a": 3}, ttl=60)  # the entity's earliest expiry is now stale
    time.sleep(0.3)
    assert store.get_features("e1", ["a", "b"]) == {"a": 3, "b": 2}
    assert store.get_features_batch(["e1"], ["a"]) == {"e1": {"a": 3}}
    store.write_features("e1", {"c": 4}, ttl=0.1)
    time.sleep(0.2)
    store.write_features("e1", {"d": 5})  # an exact pass drops c and finds the new earliest
    assert store.get_features("e1") == {"a": 3, "b": 2, "d": 5}


def test_a_closed_store_says_so(config) -> None:
    store = FeatureStore(config)
    store.write_features("e", {"a": 1})
    store.close()
    store.close()  # again: nothing
    for call in (lambda: store.get_features("e", ["a"]), lambda: store.write_features("e", {"a": 2}),
                 lambda: store.health_check(), lambda: store.get_features_batch(["e"])):
        with pytest.raises(StoreClosed, match="FeatureStore was closed"):
            call()

    async def later() -> None:
        async with AsyncFeatureStore(config) as astore:
            assert await astore.get_features("e", ["a"]) == {"a": 1}
        with pytest.raises(StoreClosed, match="AsyncFeatureStore was closed"):
            await astore.get_features("e", ["a"])
        await astore.close()

    asyncio.run(later())
    with FeatureStore(config) as fresh:  # the data is there for a new store
        assert fresh.get_features("e", ["a"]) == {"a": 1}


def test_export_takes_every_feature_unless_named(store) -> None:
    store.write_features("x1", {"a": 1.0, "b": "s"})
    store.write_features("x2", {"c": 2})
    rows = store.export_features(["x1", "x2", "x3"], format="dict")
    assert rows == {"x1": {"a": 1.0, "b": "s"}, "x2": {"c": 2}, "x3": {}}
    frame = store.export_features(["x1", "x2"])
    assert list(frame.columns) == ["a", "b", "c"] and frame.loc["x2", "c"] == 2


def test_a_numeric_list_to_an_embedding_name_is_an_embedding(server, namespace, open_store) -> None:
    """The original Quick start writes text_embedding as a Python list: it gets embedding storage
    and the embedding TTL (embedding_features, default *_embedding); other lists stay lists."""
    from fsredis import FeatureStoreConfig

    store = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, default_ttl=100, embedding_ttl=10_000))
    store.write_features("product_123", {"price": 999.99, "text_embedding": [0.1, 0.2, 0.3], "tags": [1, 2],
                                         "flags_embedding": [True, False]})
    got = store.get_features("product_123", ["text_embedding", "tags", "flags_embedding"])
    assert isinstance(got["text_embedding"], np.ndarray) and got["text_embedding"].dtype == np.float32
    assert np.allclose(got["text_embedding"], [0.1, 0.2, 0.3])
    assert got["tags"] == [1, 2] and got["flags_embedding"] == [True, False]  # not numbers: a list
    now = time.time()
    assert 9_000 < store.get_feature_lineage("product_123", "text_embedding")["expires_at"] - now <= 10_000
    assert 0 < store.get_feature_lineage("product_123", "tags")["expires_at"] - now <= 100
    plain = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, embedding_features=()))
    plain.write_features("product_124", {"text_embedding": [0.5, 1]})
    assert plain.get_features("product_124", ["text_embedding"]) == {"text_embedding": [0.5, 1]}
    with pytest.raises(ValueError, match="embedding_features"):
        FeatureStoreConfig(embedding_features="*_embedding")
