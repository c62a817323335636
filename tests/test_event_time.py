"""Event time, write results and the two read paths of storage format 2."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import msgpack
import pytest

from fsredis import FeatureStoreConfig, ValidationError
from fsredis.clock import ServerClock
from fsredis.keys import entity_keys


def test_an_older_event_goes_to_history_and_leaves_the_current_value(store) -> None:
    assert store.write_features("e1", {"x": 2, "y": "b"}, event_time=2000.0).versions == {"x": 1, "y": 1}
    late = store.write_features("e1", {"x": 1, "y": "b"}, event_time=1000.0)
    assert late.versions == {"x": 2, "y": 2} and late.history_only == {"x", "y"} and late.applied
    assert store.get_features("e1", ["x", "y"]) == {"x": 2, "y": "b"}
    lineage = store.get_feature_lineage("e1", "x")
    assert lineage["current_version"] == 1 and lineage["latest_version"] == 2
    assert [(v["version"], v["value"], v["event_time"], v["current"]) for v in lineage["versions"]] == [
        (2, 1, 1000.0, False), (1, 2, 2000.0, True),
    ]
    assert all(v["timestamp"] > time.time() - 60 for v in lineage["versions"])  # written now, whatever the event
    newer = store.write_features("e1", {"x": 3}, event_time=3000)
    assert newer.versions == {"x": 3} and not newer.history_only
    tie = store.write_features("e1", {"x": 4}, event_time=3000)  # a tie: the later write wins
    assert store.get_features("e1", ["x"]) == {"x": 4} and tie.versions == {"x": 4}
    assert [v["value"] for v in store.get_feature_lineage("e1", "x")["versions"]] == [4, 3, 1, 2]


def test_event_times_are_datetimes_or_seconds_and_default_to_the_server_clock(store) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=2)))
    store.write_features("e1", {"a": 1}, event_time=moment)
    assert store.get_feature_lineage("e1", "a")["versions"][0]["event_time"] == moment.timestamp()
    before = time.time()
    store.write_features("e2", {"a": 1})
    event = store.get_feature_lineage("e2", "a")["versions"][0]["event_time"]
    assert before - 5 < event < time.time() + 5
    for bad in (datetime(2026, 1, 1), float("nan"), float("inf"), 1e15, "yesterday"):
        with pytest.raises(ValidationError) as refused:
            store.write_features("e3", {"a": 1}, event_time=bad)
        assert refused.value.rule in ("event_time", "type")
    assert store.get_features("e3") == {}


def test_an_expired_current_value_never_wins(store) -> None:
    store.write_features("e1", {"a": "new", "keep": 1}, event_time=5000, ttl={"a": 0.1, "keep": 60})
    time.sleep(0.2)
    result = store.write_features("e1", {"a": "old but alive"}, event_time=1000)
    assert not result.history_only
    assert store.get_features("e1", ["a"]) == {"a": "old but alive"}
    versions = store.get_feature_lineage("e1", "a")["versions"]
    assert [(v["value"], v["expired"], v["current"]) for v in versions] == [("old but alive", False, True), ("new", True, False)]


def test_rollback_of_a_late_version_makes_it_current(store) -> None:
    store.write_features("e1", {"a": "now"}, event_time=2000)
    store.write_features("e1", {"a": "backfill"}, event_time=1000)
    assert store.rollback_feature("e1", "a", 2) == 3
    assert store.get_features("e1", ["a"]) == {"a": "backfill"}
    top = store.get_feature_lineage("e1", "a")["versions"][0]
    assert top["rolled_back_from"] == 2 and top["current"] and top["event_time"] >= 2.0


def test_a_retried_write_reports_that_it_was_not_applied_again(store) -> None:
    assert store.write_features("e1", {"a": 1}, write_id="w-1").applied
    again = store.write_features("e1", {"a": 2}, write_id="w-1")
    assert again and not again.applied and again.versions == {}
    assert store.get_features("e1", ["a"]) == {"a": 1}


def test_batch_writes_report_versions_and_are_safe_to_retry(store) -> None:
    rows = {f"e{i}": {"a": i, "b": -i} for i in range(30)}
    ids = {e: f"load-1/{e}" for e in rows}
    first = store.write_features_batch(rows, write_ids=ids, event_time=100.0)
    assert first and set(first) == set(rows) and all(r.versions == {"a": 1, "b": 1} for r in first.values())
    again = store.write_features_batch(rows, write_ids=ids, event_time=100.0)
    assert not any(r.applied for r in again.values())
    assert store.get_feature_lineage("e7", "a")["latest_version"] == 1
    older = store.write_features_batch({"e1": {"a": -100}}, event_time=50.0)
    assert older["e1"].history_only == {"a"} and store.get_features("e1", ["a"]) == {"a": 1}


@pytest.mark.parametrize("read_path", ["direct", "function"])
def test_both_read_paths_hide_expired_values(open_store, server, namespace, read_path) -> None:
    store = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, read_path=read_path))
    store.write_features("e1", {"brief": 1, "long": 2}, ttl={"brief": 0.15, "long": 60})
    assert store.get_features("e1", ["brief", "long"]) == {"brief": 1, "long": 2}
    deadline = time.monotonic() + 5
    while store.get_features("e1", ["brief"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    with server.client() as client:  # hidden from the moment the server counts it expired, or before
        expiry = int.from_bytes(client.hget(entity_keys(namespace, "e1").entity, "brief")[:6], "little")
        seconds, micros = client.time()
        assert seconds * 1000 + micros // 1000 < expiry + 50
    assert store.get_features("e1", ["brief", "long"]) == {"long": 2}
    assert store.get_features("e1") == {"long": 2}


def test_the_clock_bound_is_never_below_the_server_clock(server) -> None:
    clock = ServerClock(interval=0.05)
    with server.client() as client:
        for _ in range(200):
            if clock.stale():
                sent = time.monotonic()
                clock.learn(client.time(), sent)
            seconds, micros = client.time()  # read by the server before the bound is computed
            assert clock.upper_ms() >= seconds * 1000 + micros / 1000
            time.sleep(0.002)


def test_redis_cli_writes_take_an_event_time(server, namespace) -> None:
    key = entity_keys(namespace, "e1").entity
    with server.client() as client:
        def write(value: int, event: int) -> list[int]:
            options = msgpack.packb({"id": f"w{value}", "event_time": event})
            return client.fcall("fs_write", 1, key, options, "", "a", msgpack.packb(value))

        assert write(1, 2000) == [1, 1]
        assert write(2, 1000) == [1, -2]  # negative: recorded in history only
        assert msgpack.unpackb(client.fcall_ro("fs_get", 1, key, "a")[0]) == 1
        top, current, _, *versions = client.fcall_ro("fs_lineage", 1, key, "a", 10)
        assert (top, current) == (2, 1) and [v[:2] for v in versions] == [[2, 1000], [1, 2000]]


def test_the_write_log_remembers_the_latest_256_ids(store) -> None:
    for i in range(300):
        store.write_features("e1", {"a": i}, write_id=f"w{i}")
    assert not store.write_features("e1", {"a": -1}, write_id="w299").applied
    assert not store.write_features("e1", {"a": -1}, write_id="w60").applied  # the 256th newest before it
    assert store.write_features("e1", {"a": -1}, write_id="w0").applied  # forgotten: applied again


@pytest.mark.parametrize("max_versions", [1, 0])
def test_a_write_moving_expired_values_keeps_their_history(open_store, server, namespace, max_versions) -> None:
    keeper = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, default_ttl=None))
    for i in range(3):
        keeper.write_features("e1", {"b": i}, ttl={"b": 0.1})
    keeper.write_features("e1", {"keep": 1})
    time.sleep(0.2)
    narrow = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, default_ttl=None,
                                           max_versions=max(max_versions, 1), enable_versioning=max_versions > 0))
    narrow.write_features("e1", {"a": 1})  # moves b's expired value to history, under another max_versions
    assert [v["version"] for v in keeper.get_feature_lineage("e1", "b")["versions"]] == [3, 2, 1]
    assert keeper.rollback_feature("e1", "b", 1) == 4
    assert keeper.get_features("e1", ["b"]) == {"b": 0}
