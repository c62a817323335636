"""As-of reads: features as they were at a time T, checked against an independent model.

The model keeps every version ever written (nothing trimmed); the store keeps at most
``max_versions``. For every T the store must give the model's answer, or say *beyond retention*
— and it may say so only for a feature that lost versions to trimming. Never another version.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsredis import FeatureStore, FeatureStoreConfig, NotFound, ValidationError
from fsredis.history import AsOf
from fsredis.keys import entity_keys
from tests.conftest import LocalCluster, make_store, stores_by_max_versions

NAMES = ["a", "b", "c"]
FUTURE = time.time() + 10 * 86_400  # after every TTL of the test has run out, before none of the events


def operations(entities: list[str], names: list[str], most: int) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Writes (entity, features -> value seed, event time in s, max_versions, ttl in s or None),
    rollbacks (entity, name, version, max_versions) and deletes (entity, name)."""
    return st.lists(
        st.one_of(
            st.tuples(st.just("write"), st.sampled_from(entities),
                      st.dictionaries(st.sampled_from(names), st.integers(0, 3), min_size=1),
                      st.integers(1, 12), st.sampled_from([1, 2, 3, 10]), st.sampled_from([None, 86_400])),
            st.tuples(st.just("rollback"), st.sampled_from(entities), st.sampled_from(names), st.integers(1, 12),
                      st.sampled_from([2, 10])),
            st.tuples(st.just("delete"), st.sampled_from(entities), st.sampled_from(names)),
        ),
        min_size=1, max_size=most,
    )


class Model:
    """Every version of every feature: (version, event s, expires by FUTURE, value)."""

    def __init__(self) -> None:
        self.versions: dict[str, list[tuple[int, float, bool, Any]]] = {}

    def add(self, name: str, event: float, expires: bool, value: Any) -> int:
        versions = self.versions.setdefault(name, [])
        versions.append((len(versions) + 1, event, expires, value))
        return len(versions)

    def at(self, name: str, t: float) -> tuple[bool, Any]:
        """(found, value) at t: the newest event at or before t (ties: the later write), if live."""
        candidates = [v for v in self.versions.get(name, []) if v[1] <= t]
        if not candidates:
            return False, None
        version = max(candidates, key=lambda v: (v[1], v[0]))
        if version[2] and t >= FUTURE:
            return False, None
        return True, version[3]


def check(store: Any, model: Model, entity: str, t: float) -> None:
    got = store.get_features(entity, NAMES, as_of=t)
    assert isinstance(got, AsOf)
    for name in NAMES:
        found, value = model.at(name, t)
        kept = len(store.get_feature_lineage(entity, name)["versions"]) if name in model.versions else 0
        cut = len(model.versions.get(name, [])) > kept
        if name in got.beyond_retention:
            assert cut, f"{name} at {t}: beyond retention, but no version of it was cut"
            assert name not in got
        elif found:
            assert name in got and got[name] == value, (name, t, got, model.versions.get(name))
        else:
            assert name not in got, (name, t, got, model.versions.get(name))


def replay(stores: dict[int, Any], models: dict[str, "Model"], ops: list[tuple[Any, ...]],
           value: Callable[[str, int, int], Any]) -> None:
    """Apply ``operations`` to the stores (by max_versions) and to the models of their entities,
    checking each version number the store gives; ``value(name, seed, serial)`` makes a value
    that tells every version apart."""
    serial = 0
    for op in ops:
        if op[0] == "write":
            _, entity, seeds, event, mv, ttl = op
            features = {}
            for name, seed in seeds.items():
                serial += 1
                features[name] = value(name, seed, serial)
            result = stores[mv].write_features(entity, features, event_time=event, ttl=ttl)
            for name, written in features.items():
                assert result.versions[name] == models[entity].add(name, event, ttl is not None, written)
        elif op[0] == "rollback":
            _, entity, name, version, mv = op
            try:
                new = stores[mv].rollback_feature(entity, name, version)
            except NotFound:
                continue
            # A rollback's event time is the server's now: after every event of the test.
            model = models[entity]
            assert new == model.add(name, time.time(), False, model.versions[name][version - 1][3])
        elif stores[10].delete_features(op[1], [op[2]]):
            models[op[1]].versions.pop(op[2], None)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations(["e"], NAMES, 25))
def test_as_of_reads_agree_with_the_model(open_store, server, namespace, ops) -> None:
    stores = stores_by_max_versions(open_store, server, namespace)
    stores[10].delete_features("e")
    model = Model()
    replay(stores, {"e": model}, ops, lambda name, seed, serial: f"{name}{seed}-{serial}")
    for t in (0, *range(1, 14), time.time() + 60, FUTURE):
        check(stores[10], model, "e", t)


def test_as_of_reads_across_clients_and_entities(store) -> None:
    """Sync and async, both transports: a batch of entities, all features, times as datetimes."""
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for day, price in enumerate([10.0, 11.0, 12.0]):
        store.write_features("p1", {"price": price, "name": f"v{day}"}, event_time=base + timedelta(days=day))
    store.write_features("p2", {"price": 99.0}, event_time=base + timedelta(days=1))
    store.write_features("p1", {"price": 10.5}, event_time=base + timedelta(hours=12))  # a late event
    noon = base + timedelta(hours=13)
    assert store.get_features("p1", ["price", "name"], as_of=noon) == {"price": 10.5, "name": "v0"}
    assert store.get_features("p1", as_of=noon) == {"price": 10.5, "name": "v0"}  # every feature it has
    assert store.get_features("p1", ["price"], as_of=base - timedelta(seconds=1)) == {}
    batch = store.get_features_batch(["p1", "p2", "nobody"], ["price"], as_of=base + timedelta(days=1))
    assert batch == {"p1": {"price": 11.0}, "p2": {"price": 99.0}, "nobody": {}}
    assert all(isinstance(row, AsOf) and not row.beyond_retention for row in batch.values())
    assert store.get_features_batch(["p1", "p2"], as_of=noon) == {"p1": {"price": 10.5, "name": "v0"}, "p2": {}}
    # The current read is untouched by history: the newest event is current.
    assert store.get_features("p1", ["price"]) == {"price": 12.0}


def test_beyond_retention_is_said_not_guessed(server, namespace) -> None:
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace, max_versions=2, default_ttl=None)
    with FeatureStore(config) as store:
        for event in (10, 20, 30):
            store.write_features("e", {"x": event}, event_time=event)
        got = store.get_features("e", ["x"], as_of=15)  # version 1 (event 10) was cut
        assert got == {} and got.beyond_retention == {"x"}
        assert store.get_features("e", ["x"], as_of=25) == {"x": 20}
        assert store.get_features("e", ["x"], as_of=5).beyond_retention == {"x"}  # cannot tell: maybe nothing
        # A late event older than a cut one: the kept version is not the answer at 25 any more.
        store.write_features("e", {"x": 12}, event_time=12)  # cuts version 2 (event 20)
        assert store.get_features("e", ["x"], as_of=25).beyond_retention == {"x"}
        assert store.get_features("e", ["x"], as_of=30) == {"x": 30}
        # With nothing cut, before the first event is simply absent.
        store.write_features("f", {"x": 1}, event_time=50)
        got = store.get_features("f", ["x"], as_of=40)
        assert got == {} and not got.beyond_retention


def test_a_version_expired_at_t_is_absent_and_not_replaced_by_an_older_one(server, namespace) -> None:
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace, default_ttl=None)
    with FeatureStore(config) as store:
        store.write_features("e", {"x": 1}, event_time=100)
        store.write_features("e", {"x": 2}, event_time=200, ttl=60)
        assert store.get_features("e", ["x"], as_of=250) == {"x": 2}  # expires 60 s after it was written
        assert store.get_features("e", ["x"], as_of=time.time() + 3600) == {}  # expired by then
        assert store.get_features("e", ["x"], as_of=150) == {"x": 1}


def test_an_index_of_before_cuts_were_kept_is_read_and_rewritten(server, namespace) -> None:
    """Indexes written before they kept the newest event time cut (a 6-byte header): versions cut
    are taken to be older than every kept one, and the next write stores the cut."""
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace, max_versions=2, default_ttl=None)
    key = entity_keys(namespace, "e").entity
    with FeatureStore(config) as store, server.client() as client:
        for event in (10, 20, 30):
            store.write_features("e", {"x": event}, event_time=event)
        index = client.hget(key, "x#")
        assert len(index) == 12 + 30 and int.from_bytes(index[6:12], "little", signed=True) == 10_000
        client.hset(key, "x#", index[:6] + index[12:])  # the old layout
        assert store.get_features("e", ["x"], as_of=25) == {"x": 20}
        assert store.get_features("e", ["x"], as_of=15).beyond_retention == {"x"}
        assert store.get_feature_lineage("e", "x")["current_version"] == 3
        store.write_features("e", {"x": 40}, event_time=40)
        index = client.hget(key, "x#")
        assert len(index) == 12 + 30 and int.from_bytes(index[6:12], "little", signed=True) == 20_000
        assert store.get_features("e", ["x"], as_of=35) == {"x": 30}


def test_as_of_times_are_refused_typed(server, namespace) -> None:
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        for bad in (datetime(2026, 1, 1), float("nan"), "yesterday", 2**60):
            with pytest.raises(ValidationError) as caught:
                store.get_features("e", ["x"], as_of=bad)
            assert caught.value.rule == "as_of"


def test_as_of_batches_on_a_cluster(local_cluster: LocalCluster, namespace: str) -> None:
    config = FeatureStoreConfig(redis_url=local_cluster.url, cluster=True, namespace=namespace, default_ttl=None)
    for kind in ("sync", "async"):
        store = make_store(kind, config)
        try:
            ids = [f"{kind}{i}" for i in range(60)]  # spread over the slots of every primary
            store.write_features_batch({e: {"x": 1} for e in ids}, event_time=100)
            store.write_features_batch({e: {"x": 2} for e in ids}, event_time=200)
            assert store.get_features_batch(ids, ["x"], as_of=150) == {e: {"x": 1} for e in ids}
            assert store.get_features_batch(ids, as_of=250) == {e: {"x": 2} for e in ids}
        finally:
            store.close()
