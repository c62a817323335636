"""fsredis migrate: storage format 1 (four keys per entity) to format 2 (one hash)."""

from __future__ import annotations

import struct
import time

import msgpack
import pytest

from fsredis import FeatureStore, FeatureStoreConfig
from fsredis.cli import main
from fsredis.keys import entity_keys, v1_keys
from tests.conftest import entity_keys_in


def pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=False)


def v1_record(version: int, at_ms: int, expires_ms: int, write_id: str, meta: dict, value: bytes) -> bytes:
    """A format-1 history record, as fsredis 0.1 wrote it (docs/storage_format.md of 0.1)."""
    wid, packed = write_id.encode(), pack(meta)
    return struct.pack("<IdddI", 28 + len(wid) + len(packed), version, at_ms, expires_ms, len(wid)) + wid + packed + value


def write_v1(client, namespace: str, entity: str, now_ms: int) -> None:
    """An entity as 0.1 left it: price at version 3 (1 trimmed, 2 and 3 kept), name at version 2
    from a write shared with price, an expired feature with history, and remembered write ids."""
    keys = v1_keys(namespace, entity)
    hour = now_ms + 3_600_000
    client.hset(keys.values, mapping={"price": pack(3.5), "name": pack("b"), "gone": pack(0), "#min": now_ms - 10})
    client.hset(keys.expiry, mapping={"price": hour, "gone": now_ms - 10})
    client.hset(keys.history, mapping={
        "price": 3, "name": 2, "gone": 1, "#keep": 10,
        "price#2": v1_record(2, now_ms - 3000, hour, "w2", {"source": "etl"}, pack(2.5)),
        "price#3": v1_record(3, now_ms - 1000, hour, "w3", {"source": "etl", "run": 7}, pack(3.5)),
        "name#1": v1_record(1, now_ms - 3000, -1, "w2", {"source": "etl"}, pack("a")),
        "name#2": v1_record(2, now_ms - 1000, -1, "w3", {"source": "etl", "run": 7}, pack("b")),
        "gone#1": v1_record(1, now_ms - 5000, now_ms - 10, "w0", {}, pack(0)),
    })
    client.zadd(keys.writes, {"w2": now_ms - 3000, "w3": now_ms - 1000})
    client.pexpireat(keys.writes, now_ms + 300_000)


def test_migrate_converts_values_history_and_write_ids(server, namespace, capsys) -> None:
    with server.client() as client:
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        for entity in ("product:1", "product:2", "3"):
            write_v1(client, namespace, entity, now_ms)
    target = ["--redis-url", server.url, "--namespace", namespace]
    assert main(["info", *target]) == 0
    assert "3 entities still in storage format 1" in capsys.readouterr().out
    assert main(["migrate", "--dry-run", *target]) == 0
    assert "3 entities" in capsys.readouterr().out
    assert main(["migrate", *target]) == 0
    assert "migrated 3 of 3 entities (9 features)" in capsys.readouterr().out
    assert [k.decode() for k in entity_keys_in(server, namespace)] == sorted(
        entity_keys(namespace, e).entity for e in ("product:1", "product:2", "3"))
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        assert store.get_features("product:1") == {"price": 3.5, "name": "b"}
        price = store.get_feature_lineage("product:1", "price")
        assert price["current_version"] == 3 and price["latest_version"] == 3
        assert [(v["version"], v["value"], v["source"], v.get("run")) for v in price["versions"]] == [
            (3, 3.5, "etl", 7), (2, 2.5, "etl", None)]
        assert price["versions"][1]["timestamp"] == price["versions"][1]["event_time"] == (now_ms - 3000) / 1000
        assert 3_500 < price["expires_at"] - time.time() <= 3_600
        name = store.get_feature_lineage("product:1", "name")
        assert [(v["version"], v["value"], v["write_id"]) for v in name["versions"]] == [(2, "b", "w3"), (1, "a", "w2")]
        gone = store.get_feature_lineage("product:1", "gone")
        assert [(v["version"], v["value"], v["expired"]) for v in gone["versions"]] == [(1, 0, True)]
        assert not store.write_features("product:1", {"price": 9.0}, write_id="w3").applied  # remembered
        assert store.write_features("product:1", {"price": 9.0}).versions == {"price": 4}
        assert store.rollback_feature("product:1", "price", 2) == 5
        assert store.get_features("product:1", ["price"]) == {"price": 2.5}
    assert main(["migrate", *target]) == 0  # nothing left to do
    assert "migrated 0 of 0 entities" in capsys.readouterr().out
    assert main(["info", *target]) == 0
    assert "format 1" not in capsys.readouterr().out


def test_migrate_leaves_entities_written_since_alone_and_refuses_damage(server, namespace, capsys) -> None:
    with server.client() as client:
        seconds, _ = client.time()
        write_v1(client, namespace, "e:1", seconds * 1000)
        write_v1(client, namespace, "e:2", seconds * 1000)
        client.hset(v1_keys(namespace, "e:2").history, "price#2", b"\x01\x02")  # a damaged record
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        store.write_features("e:1", {"price": 1.0})  # written in format 2 before the migration
        before = {k: None for k in entity_keys_in(server, namespace)}
        report = store.migrate()
        assert (report.entities, report.migrated) == (2, 0)
        assert report.conflicts == [entity_keys(namespace, "e:1").entity]
        assert "rule=record" in report.errors[entity_keys(namespace, "e:2").entity]
        assert {k: None for k in entity_keys_in(server, namespace)} == before  # nothing changed
    assert main(["migrate", "--redis-url", server.url, "--namespace", namespace]) == 1
    assert "left alone" in capsys.readouterr().err


@pytest.mark.parametrize("versioning", [True, False])
def test_an_entity_without_records_or_with_everything_expired(server, namespace, versioning) -> None:
    with server.client() as client:
        seconds, _ = client.time()
        now_ms = seconds * 1000
        keys = v1_keys(namespace, "e1")
        client.hset(keys.values, mapping={"a": pack(1)})
        client.hset(keys.history, mapping={"a": 4})  # versioning was off: a counter, no record
        dead = v1_keys(namespace, "e2")
        client.hset(dead.values, mapping={"a": pack(1)})
        client.hset(dead.expiry, mapping={"a": now_ms - 1})
        client.hset(dead.history, mapping={"a": 1})
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace, enable_versioning=versioning)
    with FeatureStore(config) as store:
        assert store.migrate().migrated == 2
        assert store.get_features("e1") == {"a": 1}
        assert store.write_features("e1", {"a": 2}).versions == {"a": 5}
        assert [k.decode() for k in entity_keys_in(server, namespace)] == [entity_keys(namespace, "e1").entity]


def test_versions_of_one_write_id_and_damaged_expiries(server, namespace) -> None:
    # Format 1 with dedup off could give two versions of one feature the same write id and time;
    # an expiry written around the library may not be a whole number (format 1 read it as past).
    with server.client() as client:
        seconds, _ = client.time()
        now_ms = seconds * 1000
        keys = v1_keys(namespace, "e1")
        client.hset(keys.values, mapping={"a": pack(2), "b": pack(5), "c": pack(6)})
        client.hset(keys.expiry, mapping={"b": "12.5", "c": "soon"})
        client.hset(keys.history, mapping={
            "a": 2, "b": 1, "c": 1,
            "a#1": v1_record(1, now_ms - 5, -1, "same", {}, pack(1)),
            "a#2": v1_record(2, now_ms - 5, -1, "same", {}, pack(2)),
        })
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        report = store.migrate()
        assert report.migrated == 1 and not report.errors
        assert [(v["version"], v["value"]) for v in store.get_feature_lineage("e1", "a")["versions"]] == [(2, 2), (1, 1)]
        assert store.get_features("e1") == {"a": 2}  # b and c had expired


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fsredis import CorruptValue, FeatureStoreError  # noqa: E402

junk = st.one_of(st.binary(max_size=40), st.integers(-5, 10**6).map(lambda n: str(n).encode()),
                 st.sampled_from([b"inf", b"nan", b"0x10", b"1.5", b"-1", b""]))
records = st.builds(lambda v, t, x, w, m, val: v1_record(v, t, x, w, m, val),
                    st.integers(1, 4), st.integers(0, 2**41), st.sampled_from([-1, 1, 2**41]),
                    st.sampled_from(["w1", "w2"]), st.sampled_from([{}, {"source": "s"}]),
                    st.sampled_from([pack(1), pack("x"), b"\xc1e4\x00" + bytes(8), b"\xa1"]))
fields = st.dictionaries(st.sampled_from(["a", "b", "#min", "a#1", "a#2", "b#1", "#keep", "a#", "#"]),
                         st.one_of(junk, records, st.sampled_from([pack(1), pack(2.5)])), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=fields, expiry=st.dictionaries(st.sampled_from(["a", "b"]), junk, max_size=2),
       history=fields)
def test_migrate_of_hostile_format_1_data_converts_or_changes_nothing(server, namespace, values, expiry, history) -> None:
    keys = v1_keys(namespace, "h1")
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        store.load_library(only_if_changed=True)
    with server.client() as client:
        client.delete(*keys, entity_keys(namespace, "h1").entity)
        if values:
            client.hset(keys.values, mapping=values)
        if expiry:
            client.hset(keys.expiry, mapping=expiry)
        if history:
            client.hset(keys.history, mapping=history)
        before = {k: client.dump(k) for k in (*keys, entity_keys(namespace, "h1").entity)}
        try:
            client.fcall("fs_migrate", 5, *keys, entity_keys(namespace, "h1").entity)
        except Exception as exc:  # noqa: BLE001 - a refusal: typed, and nothing changed
            assert str(exc).startswith(("FSCORRUPT ", "FSARG ")), exc
            assert {k: client.dump(k) for k in before} == before
            return
        assert client.exists(*keys) == 0  # converted: the format-1 keys are gone
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        for name in ("a", "b"):
            try:
                store.get_feature_lineage("h1", name)
                store.get_features("h1", [name])
            except CorruptValue:
                pass  # a damaged value carried over is reported typed, never a decoder's error
            except FeatureStoreError as exc:
                raise AssertionError(f"{name}: {exc!r}") from exc
        store.write_features("h1", {"a": 3})  # and the entity takes writes again
